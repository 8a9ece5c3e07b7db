package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// One-time codes: sign-in by an emailed code or link or an SMS code under /auth/otp,
// and the caller's phone number under /users/me/phone. Only the sign-in's verify
// differs between versions (v2: the refresh token in the cookie).

// registerOTP adds the routes of version v shared by both versions. The sign-in routes
// answer 404 feature_disabled while otp_login is off, the phone routes while phone is
// off, and so does an SMS sign-in ({phone}) while phone is off.
func (h *Handler) registerOTP(e *echo.Echo, v string) {
	auth, phone := h.authenticate, h.requireFlag(flags.Phone)
	e.POST(v+"/auth/otp", h.requestOTP, h.requireFlag(flags.OTPLogin))
	e.POST(v+"/users/me/phone", h.setPhone, phone, auth)
	e.POST(v+"/users/me/phone/verify", h.verifyPhone, phone, auth)
}

type otpRequest struct {
	Email string `json:"email"`
	Phone string `json:"phone"`
}

func (h *Handler) requestOTP(c echo.Context) error {
	var req otpRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Phone != "" {
		if err := h.flagOn(c, flags.Phone); err != nil {
			return err
		}
	}
	if err := h.svc.RequestOTP(c.Request().Context(), req.Email, req.Phone, client(c)); err != nil {
		return err
	}
	return accepted(c)
}

type otpVerifyRequest struct {
	Email string `json:"email"`
	Phone string `json:"phone"`
	Code  string `json:"code"`
	Token string `json:"token"`
}

// otpPair is the code sign-in of both versions: bind, check, sign in.
func (h *Handler) otpPair(c echo.Context) (account.TokenPair, error) {
	var req otpVerifyRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		h.metrics.login(err, false)
		return account.TokenPair{}, err
	}
	if req.Phone != "" {
		if err := h.flagOn(c, flags.Phone); err != nil {
			h.metrics.login(err, false)
			return account.TokenPair{}, err
		}
	}
	pair, err := h.svc.VerifyOTP(c.Request().Context(), account.OTPAttempt{Email: req.Email, Phone: req.Phone,
		Code: req.Code, Token: req.Token}, client(c))
	h.metrics.login(err, pair.MFARequired)
	pair.MFAFactors = h.offeredFactors(c, pair.MFAFactors)
	return pair, err
}

func (h *Handler) verifyOTP(c echo.Context) error {
	pair, err := h.otpPair(c)
	if err != nil {
		return err
	}
	if pair.MFARequired {
		return c.JSON(http.StatusOK, accounts.ViewMFARequired(pair))
	}
	return c.JSON(http.StatusOK, accounts.ViewPair(pair))
}

// verifyOTPV2: with MFA on, v1's challenge (no tokens, no cookie), finished at
// /v2/auth/login/mfa.
func (h *Handler) verifyOTPV2(c echo.Context) error {
	pair, err := h.otpPair(c)
	if err != nil {
		return err
	}
	if pair.MFARequired {
		return c.JSON(http.StatusOK, accounts.ViewMFARequired(pair))
	}
	return h.renderPairV2(c, pair)
}

type phoneRequest struct {
	Phone           string `json:"phone"`
	CurrentPassword string `json:"current_password"`
}

func (h *Handler) setPhone(c echo.Context) error {
	var req phoneRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.StartPhoneVerification(c.Request().Context(), principal(c), req.Phone, req.CurrentPassword, client(c)); err != nil {
		return err
	}
	return accepted(c)
}

func (h *Handler) verifyPhone(c echo.Context) error {
	var req struct {
		Code string `json:"code"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	u, err := h.svc.VerifyPhone(c.Request().Context(), principal(c), req.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewUser(u))
}
