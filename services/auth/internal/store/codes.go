package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var _ account.CodeStore = (*Codes)(nil)

// Codes are the one-time codes of one_time_tokens (purposes otp_email, otp_sms and
// phone_verification).
type Codes struct {
	users *Users
}

// NewCodes returns the codes; they write tokens and events through users.
func NewCodes(users *Users) *Codes { return &Codes{users: users} }

// guessCode is the one statement a guess costs, for a known or an unknown owner: the
// live code of the purpose and owner counts the guess, and is used by a right one or
// burnt by the maxAttempts-th wrong one. (SET reads the row's values before the update.)
const guessCode = `UPDATE one_time_tokens t SET
		attempts = t.attempts + CASE WHEN t.code_hash = ?0 THEN 0 ELSE 1 END,
		used_at = CASE WHEN t.code_hash = ?0 OR t.attempts + 1 >= ?1 THEN now() END
	WHERE t.user_id = (%s) AND t.purpose = ?2 AND t.used_at IS NULL AND t.expires_at > now()
		AND t.code_hash IS NOT NULL
	RETURNING t.user_id, t.code_hash = ?0 AS right, t.phone`

type guess struct {
	UserID uuid.UUID `bun:"user_id"`
	Right  bool      `bun:"right"`
	Phone  *string   `bun:"phone"`
}

// spend runs guessCode with owner, the subquery that finds the account (its
// arguments after the first three).
func spend(ctx context.Context, tx bun.Tx, owner string, codeHash []byte, maxAttempts int, purpose account.Purpose,
	args ...any) (guess, account.CodeResult, error) {
	var g guess
	err := tx.NewRaw(fmt.Sprintf(guessCode, owner), append([]any{codeHash, maxAttempts, string(purpose)}, args...)...).Scan(ctx, &g)
	switch {
	case postgres.IsNoRows(err):
		return g, account.CodeNone, nil
	case err != nil:
		return g, account.CodeNone, fmt.Errorf("spend a %s guess: %w", purpose, accounts.Unavailable(err))
	case !g.Right:
		return g, account.CodeWrong, nil
	}
	return g, account.CodeRight, nil
}

// UseCode spends one guess at the live sign-in code of the account of addr: its
// address for otp_email, its number for otp_sms. A wrong guess commits (it counts); a
// right emailed one proves the address in the same transaction.
func (c *Codes) UseCode(ctx context.Context, purpose account.Purpose, addr string, codeHash []byte, maxAttempts int,
	evs func(account.User, account.Proof) []account.Event) (account.CodeUse, error) {
	owner := "SELECT id FROM users WHERE email = ?3"
	if purpose == account.PurposeOTPSMS {
		owner = "SELECT id FROM users WHERE phone = ?3"
	}
	var use account.CodeUse
	err := c.users.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		g, res, err := spend(ctx, tx, owner, codeHash, maxAttempts, purpose, addr)
		if err != nil || res != account.CodeRight {
			use.Result = res
			return err
		}
		use, err = c.signIn(ctx, tx, w, g.UserID, purpose == account.PurposeOTPEmail, evs)
		return err
	})
	return use, err
}

// UseOTPLink uses a live emailed sign-in link: the row of its code too.
func (c *Codes) UseOTPLink(ctx context.Context, hash []byte, evs func(account.User, account.Proof) []account.Event) (account.CodeUse, error) {
	var use account.CodeUse
	err := c.users.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		uid, _, err := consume(ctx, tx, hash, account.PurposeOTPEmail)
		if postgres.IsNoRows(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("use sign-in link: %w", accounts.Unavailable(err))
		}
		use, err = c.signIn(ctx, tx, w, uid, true, evs)
		return err
	})
	return use, err
}

// signIn loads the account of a right code, after proving its address when the code
// came by email.
func (c *Codes) signIn(ctx context.Context, tx bun.Tx, w *usercache.Writes, uid uuid.UUID, emailed bool,
	evs func(account.User, account.Proof) []account.Event) (account.CodeUse, error) {
	use := account.CodeUse{Result: account.CodeRight}
	if emailed {
		var err error
		if use.Proof, err = proveAddress(ctx, tx, uid, nil); err != nil {
			return use, err
		}
	}
	u, err := c.users.One(ctx, tx, "u.id = ?", uid)
	if err != nil {
		return use, err
	}
	use.User = u
	if err := c.users.enqueue(ctx, tx, evs(u, use.Proof)...); err != nil {
		return use, err
	}
	if use.Proof.WasUnverified || len(use.Proof.Unlinked) > 0 {
		return use, invalidate(ctx, w, uid)
	}
	return use, nil
}

// IssueCode retires the user's live tokens of t's purpose and stores t with ev.
func (c *Codes) IssueCode(ctx context.Context, t account.OneTimeToken, ev account.Event) error {
	return c.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return c.users.issueToken(ctx, tx, t, "", ev)
	})
}

// VerifyPhone spends one guess at the user's phone verification code; a right one
// sets the number it proves. Another account's number is ErrPhoneTaken, the code then
// used all the same (whoever proved the number learns only what the number's SMS
// sign-in would tell them).
func (c *Codes) VerifyPhone(ctx context.Context, userID string, codeHash []byte, maxAttempts int,
	evs func(u account.User, previous string) []account.Event) (account.CodeUse, error) {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return account.CodeUse{}, err
	}
	var use account.CodeUse
	taken := false
	err = c.users.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		g, res, err := spend(ctx, tx, "SELECT ?3::uuid", codeHash, maxAttempts, account.PurposePhoneVerification, uid)
		if err != nil || res != account.CodeRight {
			use.Result = res
			return err
		}
		if g.Phone == nil {
			return fmt.Errorf("phone verification of %s has no number", uid)
		}
		var previous *string
		if err := tx.NewRaw(`SELECT phone FROM users WHERE id = ? FOR UPDATE`, uid).Scan(ctx, &previous); err != nil {
			return notFound(err)
		}
		var other bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM users WHERE phone = ? AND id <> ?)`, *g.Phone, uid).
			Scan(ctx, &other); err != nil {
			return fmt.Errorf("look the number up: %w", accounts.Unavailable(err))
		}
		if other {
			taken = true
			return nil
		}
		if _, err := tx.NewRaw(`UPDATE users SET phone = ?, phone_verified_at = now(), updated_at = now() WHERE id = ?`,
			*g.Phone, uid).Exec(ctx); err != nil {
			if postgres.IsUniqueViolation(err, "users_phone_key") {
				return account.ErrPhoneTaken // set by another account meanwhile: rolled back
			}
			return fmt.Errorf("set phone: %w", accounts.Unavailable(err))
		}
		u, err := c.users.One(ctx, tx, "u.id = ?", uid)
		if err != nil {
			return err
		}
		use = account.CodeUse{Result: account.CodeRight, User: u}
		if previous != nil && *previous != u.Phone {
			use.PreviousPhone = *previous
		}
		if err := c.users.enqueue(ctx, tx, evs(u, use.PreviousPhone)...); err != nil {
			return err
		}
		return invalidate(ctx, w, uid)
	})
	if err == nil && taken {
		return account.CodeUse{}, account.ErrPhoneTaken
	}
	return use, err
}
