package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wantKeys is every payload's JSON keys as they reach the wire (a writer's "token" is
// "token_sealed" there, its "code" "code_sealed"); "?" marks a key omitted when empty. A change here is a change
// to the event contract: docs/events.md and the consumers change with it.
var wantKeys = map[string]string{
	SubjectVerificationRequested:     "user_id email name token_sealed? expires_at provider?",
	SubjectPasswordResetRequested:    "user_id email name token_sealed? expires_at",
	SubjectRegisterExisting:          "user_id email name provider?",
	SubjectOTPRequested:              "user_id email name code_sealed? token_sealed? expires_at",
	SubjectSMSCodeRequested:          "user_id phone purpose code_sealed? expires_at",
	SubjectRegistered:                "user_id method? provider? ip user_agent",
	SubjectEmailVerified:             "user_id email name",
	SubjectPasswordChanged:           "user_id email name how",
	SubjectLoginSucceeded:            "user_id session_id amr ip user_agent",
	SubjectLoginFailed:               "user_id? email_sha256? reason ip user_agent",
	SubjectMFAEnabled:                "user_id email name",
	SubjectMFADisabled:               "user_id email name",
	SubjectPasskeyAdded:              "user_id email name passkey_id passkey_name",
	SubjectPasskeyRemoved:            "user_id email name passkey_id passkey_name",
	SubjectPhoneVerified:             "user_id email name phone previous_phone?",
	SubjectSignedIn:                  "user_id provider subject how ip user_agent",
	SubjectIdentityLinked:            "user_id provider subject? how session_id? ip? user_agent?",
	SubjectIdentityUnlinked:          "user_id provider how? session_id? ip? user_agent?",
	SubjectUnverifiedAccountReplaced: "user_id replaced_user_id provider ip user_agent",
	SubjectRefreshReused:             "user_id session_id ip user_agent",
	SubjectLoggedOut:                 "user_id session_ids",
	SubjectLoggedOutAll:              "user_id sessions_ended",
	SubjectUserRolesSet:              "user_id roles actor_id actor_session_id",
	SubjectUserDisabled:              "user_id actor_id actor_session_id",
	SubjectUserEnabled:               "user_id actor_id actor_session_id",
	SubjectRoleCreated:               "role permissions actor_id actor_session_id",
	SubjectRoleDeleted:               "role actor_id actor_session_id",
	SubjectWebhookCreated:            "webhook_id url events actor_id actor_session_id",
	SubjectWebhookDeleted:            "webhook_id url actor_id actor_session_id",
	SubjectWebhookSecretRotated:      "webhook_id previous_expires_at actor_id actor_session_id",
	SubjectWebhookEnabled:            "webhook_id actor_id actor_session_id",
	SubjectFlagChanged:               "flag enabled actor_id actor_session_id",
	SubjectWebhookDisabled:           "user_id email name webhook_id url failing_since last_error",
}

// field is one JSON key of a payload struct.
type field struct {
	key      string
	optional bool // omitted when empty (omitempty, or in a nil embedded pointer)
	typ      reflect.Type
}

// jsonFields lists the JSON keys of struct type t the way encoding/json writes them,
// embedded structs flattened.
func jsonFields(t reflect.Type, optional bool) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft, ptr := f.Type, false
			if ft.Kind() == reflect.Pointer {
				ft, ptr = ft.Elem(), true
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft, optional || ptr)...)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, field{key: name, optional: optional || strings.Contains(opts, "omitempty"), typ: f.Type})
	}
	return out
}

// wireKeys renders a payload type's keys as wantKeys does.
func wireKeys(t reflect.Type) string {
	var keys []string
	for _, f := range jsonFields(t, false) {
		switch {
		case f.key == FieldToken, f.key == FieldCode:
			continue // sealed into token_sealed and code_sealed, never on the wire
		case f.optional:
			keys = append(keys, f.key+"?")
		default:
			keys = append(keys, f.key)
		}
	}
	return strings.Join(keys, " ")
}

func sortedFields(s string) []string {
	f := strings.Fields(s)
	sort.Strings(f)
	return f
}

func TestCatalogIsComplete(t *testing.T) {
	consts := subjectConstants(t)
	specs := Catalog()
	if len(specs) != len(consts) {
		t.Errorf("the catalog has %d subjects, payloads.go declares %d", len(specs), len(consts))
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Subject] {
			t.Errorf("%s is in the catalog twice", s.Subject)
		}
		seen[s.Subject] = true
		if !slices.Contains(slices.Collect(maps.Values(consts)), s.Subject) {
			t.Errorf("%s has no Subject constant", s.Subject)
		}
		if !strings.HasPrefix(s.Subject, "auth.") || strings.ContainsAny(s.Subject, "*> ") {
			t.Errorf("%s is not a subject under %s", s.Subject, SubjectAll)
		}
		if s.Payload == nil || s.Payload.Kind() != reflect.Struct {
			t.Errorf("%s: the payload %v is not a struct type", s.Subject, s.Payload)
			continue
		}
		if len(s.Publishers) == 0 {
			t.Errorf("%s: nothing publishes it", s.Subject)
		}
		for _, p := range s.Publishers {
			if p != PublisherAuth && p != PublisherOAuth && p != PublisherTokenWorker {
				t.Errorf("%s: unknown publisher %q", s.Subject, p)
			}
		}
		if !s.ReadBy(ReaderAudit) {
			t.Errorf("%s: the audit log records every event, the catalog says it does not read this one", s.Subject)
		}
		// A payload is read by the mailer exactly when the mailer can read it.
		_, mailed := s.New().(Mailed)
		if mailed != s.ReadBy(ReaderEmail) {
			t.Errorf("%s: implements Mailed %v, read by %s %v", s.Subject, mailed, ReaderEmail, s.ReadBy(ReaderEmail))
		}
		// The oauth store fills in the user of what oauth publishes.
		if _, ok := s.New().(UserPayload); ok != s.Publishes(PublisherOAuth) {
			t.Errorf("%s: implements UserPayload %v, published by oauth %v", s.Subject, ok, s.Publishes(PublisherOAuth))
		}
		if got, ok := Lookup(s.Subject); !ok || got.Payload != s.Payload {
			t.Errorf("Lookup(%s) = %v, %v", s.Subject, got.Payload, ok)
		}
	}
	if _, ok := Lookup("auth.nothing.here"); ok {
		t.Error("Lookup found an unknown subject")
	}
	// Catalog returns a copy.
	Catalog()[0].Publishers[0] = "x"
	if Catalog()[0].Publishers[0] == "x" {
		t.Error("Catalog shares its slices with the caller")
	}
}

// subjectConstants reads the Subject* string constants of this package's source
// (SubjectAll, a pattern, aside): name to value.
func subjectConstants(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "payloads.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Subject") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				out[n.Name] = v
			}
		}
	}
	return out
}

func TestPayloadKeys(t *testing.T) {
	for _, s := range Catalog() {
		want, ok := wantKeys[s.Subject]
		if !ok {
			t.Errorf("%s: no expected keys in wantKeys", s.Subject)
			continue
		}
		if got := wireKeys(s.Payload); !slices.Equal(sortedFields(got), sortedFields(want)) {
			t.Errorf("%s: %s keys %q, want %q", s.Subject, s.Payload.Name(), got, want)
		}
	}
	if len(wantKeys) != len(Catalog()) {
		t.Errorf("wantKeys has %d subjects, the catalog %d", len(wantKeys), len(Catalog()))
	}
}

// sample is a payload of type t with every field set (strings named after the field).
func sample(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	fill(v, "")
	return v
}

var sampleTime = time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)

func fill(v reflect.Value, name string) {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(sampleTime))
	case v.Type() == reflect.TypeFor[[]byte]():
		v.SetBytes([]byte(name))
	case v.Kind() == reflect.String:
		v.SetString(name + "-value")
	case v.Kind() == reflect.Int:
		v.SetInt(3)
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.Kind() == reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), fmt.Sprintf("%s%d", name, i))
		}
		v.Set(s)
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), name)
		v.Set(p)
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), v.Type().Field(i).Name)
			}
		}
	default:
		panic("sample: no value for " + v.Type().String())
	}
}

func TestPayloadsRoundTrip(t *testing.T) {
	keys, _ := testKeyring(t, "k1")
	for _, s := range Catalog() {
		t.Run(s.Subject, func(t *testing.T) {
			for _, v := range []reflect.Value{reflect.New(s.Payload).Elem(), sample(s.Payload)} {
				b, err := json.Marshal(v.Interface())
				if err != nil {
					t.Fatal(err)
				}
				back := s.New()
				if err := json.Unmarshal(b, back); err != nil {
					t.Fatal(err)
				}
				if got := reflect.ValueOf(back).Elem().Interface(); !reflect.DeepEqual(got, v.Interface()) {
					t.Fatalf("round trip of %s:\n got %#v\nwant %#v", b, got, v.Interface())
				}
			}

			// Written by a producer, read by the worker: the same struct, the token and
			// the code sealed in between.
			full := sample(s.Payload)
			var token, code string
			if f := full.FieldByName("Token"); f.IsValid() {
				token = f.String()
				full.FieldByName("TokenSealed").SetZero()
			}
			if f := full.FieldByName("Code"); f.IsValid() {
				code = f.String()
				full.FieldByName("CodeSealed").SetZero()
			}
			env, err := NewEnvelope(keys, "0190-id", s.Subject, time.Now(), "", full.Interface())
			if err != nil {
				t.Fatal(err)
			}
			var keysOnWire map[string]json.RawMessage
			if err := json.Unmarshal(env.Payload, &keysOnWire); err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, f := range jsonFields(s.Payload, false) {
				if f.key != FieldToken && f.key != FieldCode {
					all = append(all, f.key)
				}
			}
			if got := slices.Sorted(maps.Keys(keysOnWire)); !slices.Equal(got, sortedFields(strings.Join(all, " "))) {
				t.Errorf("keys on the wire %v, want %v", got, all)
			}
			decoded, err := env.DecodePayload()
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.ValueOf(decoded).Elem()
			if token != "" {
				opened, err := env.Token(keys)
				if err != nil || opened != token {
					t.Fatalf("Token = %q, %v; want %q", opened, err, token)
				}
				if got.FieldByName("TokenSealed").IsNil() {
					t.Fatal("the decoded payload has no TokenSealed")
				}
				full.FieldByName("Token").SetString("")
				full.FieldByName("TokenSealed").Set(got.FieldByName("TokenSealed"))
			}
			if code != "" {
				opened, err := env.Code(keys)
				if err != nil || opened != code {
					t.Fatalf("Code = %q, %v; want %q", opened, err, code)
				}
				if got.FieldByName("CodeSealed").IsNil() {
					t.Fatal("the decoded payload has no CodeSealed")
				}
				full.FieldByName("Code").SetString("")
				full.FieldByName("CodeSealed").Set(got.FieldByName("CodeSealed"))
			}
			if !reflect.DeepEqual(got.Interface(), full.Interface()) {
				t.Fatalf("decoded %#v\nwant %#v", got.Interface(), full.Interface())
			}
		})
	}
}

func TestDecodePayload(t *testing.T) {
	env := Envelope{ID: "i", Type: SubjectPasswordChanged, Payload: json.RawMessage(`{"user_id":"u","email":"a@b.c","name":"A","how":"reset","extra":1}`)}
	p, err := env.DecodePayload()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.(*PasswordChanged); !ok || *got != (PasswordChanged{UserID: "u", Email: "a@b.c", Name: "A", How: "reset"}) {
		t.Fatalf("DecodePayload = %#v", p)
	}
	if m := p.(Mailed).Mail(); m != (Mail{UserID: "u", Email: "a@b.c", Name: "A", How: "reset"}) {
		t.Fatalf("Mail = %+v", m)
	}
	if _, err := (Envelope{Type: "auth.nothing.here", Payload: json.RawMessage(`{}`)}).DecodePayload(); err == nil ||
		!strings.Contains(err.Error(), "unknown event type") {
		t.Fatalf("unknown type: %v", err)
	}
	for _, raw := range []string{`[1]`, `{"how":5}`, ``} {
		if _, err := (Envelope{Type: SubjectPasswordChanged, Payload: json.RawMessage(raw)}).DecodePayload(); err == nil {
			t.Errorf("payload %q decoded", raw)
		}
	}
}

// TestPayloadsAsBefore holds each producer's payload to the map it wrote before the
// payloads were typed: the same bytes in the envelope, key for key, empty values kept.
func TestPayloadsAsBefore(t *testing.T) {
	keys, _ := testKeyring(t, "k1")
	expires := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.FixedZone("x", 3600))
	// oauth's store sets the user of every payload it writes.
	oauth := func(old map[string]any, typed any) (map[string]any, any) {
		old["user_id"] = "u-1"
		p, ok := typed.(UserPayload)
		if !ok {
			t.Fatalf("%T: oauth payloads need a user set by the store", typed)
		}
		return old, p.WithUserID("u-1")
	}
	type tc struct {
		name    string
		subject string
		old     map[string]any
		typed   any
	}
	var ended []string
	cases := []tc{
		// auth, account
		{"registered", SubjectRegistered, map[string]any{"user_id": "u-1", "ip": "203.0.113.1", "user_agent": "ua"},
			Registered{UserID: "u-1", IP: "203.0.113.1", UserAgent: "ua"}},
		{"registered, no client", SubjectRegistered, map[string]any{"user_id": "u-1", "ip": "", "user_agent": ""},
			Registered{UserID: "u-1"}},
		{"verification", SubjectVerificationRequested, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "", "token": "tok-1", "expires_at": expires},
			VerificationRequested{UserID: "u-1", Email: "a@example.com", Token: "tok-1", ExpiresAt: expires}},
		{"reset", SubjectPasswordResetRequested, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann", "token": "tok-1", "expires_at": expires},
			PasswordResetRequested{UserID: "u-1", Email: "a@example.com", Name: "Ann", Token: "tok-1", ExpiresAt: expires}},
		{"register existing", SubjectRegisterExisting, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": ""},
			RegisterExisting{UserID: "u-1", Email: "a@example.com"}},
		{"email verified", SubjectEmailVerified, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann"},
			EmailVerified{UserID: "u-1", Email: "a@example.com", Name: "Ann"}},
		{"password changed", SubjectPasswordChanged, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann", "how": "reset"},
			PasswordChanged{UserID: "u-1", Email: "a@example.com", Name: "Ann", How: "reset"}},
		{"login", SubjectLoginSucceeded, map[string]any{"user_id": "u-1", "session_id": "s-1", "amr": []string{"pwd"}, "ip": "", "user_agent": "ua"},
			LoginSucceeded{UserID: "u-1", SessionID: "s-1", AMR: []string{"pwd"}, UserAgent: "ua"}},
		{"login with mfa", SubjectLoginSucceeded, map[string]any{"user_id": "u-1", "session_id": "s-1", "amr": []string{"oauth", "otp"}, "ip": "i", "user_agent": "ua"},
			LoginSucceeded{UserID: "u-1", SessionID: "s-1", AMR: []string{"oauth", "otp"}, IP: "i", UserAgent: "ua"}},
		{"login failed, known", SubjectLoginFailed, map[string]any{"reason": "account_disabled", "ip": "i", "user_agent": "", "user_id": "u-1"},
			LoginFailed{Reason: "account_disabled", IP: "i", UserID: "u-1"}},
		{"login failed, unknown", SubjectLoginFailed, map[string]any{"reason": "invalid_credentials", "ip": "i", "user_agent": "ua", "email_sha256": "ab12"},
			LoginFailed{Reason: "invalid_credentials", IP: "i", UserAgent: "ua", EmailSHA256: "ab12"}},
		{"mfa on", SubjectMFAEnabled, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann"},
			MFAEnabled{UserID: "u-1", Email: "a@example.com", Name: "Ann"}},
		{"mfa off", SubjectMFADisabled, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": ""},
			MFADisabled{UserID: "u-1", Email: "a@example.com"}},
		{"passkey added", SubjectPasskeyAdded, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann",
			"passkey_id": "p-1", "passkey_name": "Laptop"},
			PasskeyAdded{UserID: "u-1", Email: "a@example.com", Name: "Ann", PasskeyID: "p-1", PasskeyName: "Laptop"}},
		{"passkey removed", SubjectPasskeyRemoved, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "",
			"passkey_id": "p-1", "passkey_name": "Laptop"},
			PasskeyRemoved{UserID: "u-1", Email: "a@example.com", PasskeyID: "p-1", PasskeyName: "Laptop"}},
		{"otp email", SubjectOTPRequested, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann", "code": "123456",
			"token": "tok-1", "expires_at": expires},
			OTPRequested{UserID: "u-1", Email: "a@example.com", Name: "Ann", Code: "123456", Token: "tok-1", ExpiresAt: expires}},
		{"sms sign-in code", SubjectSMSCodeRequested, map[string]any{"user_id": "u-1", "phone": "+14155550100", "purpose": "sign_in",
			"code": "123456", "expires_at": expires},
			SMSCodeRequested{UserID: "u-1", Phone: "+14155550100", Purpose: SMSPurposeSignIn, Code: "123456", ExpiresAt: expires}},
		{"sms phone verification code", SubjectSMSCodeRequested, map[string]any{"user_id": "u-1", "phone": "+14155550100",
			"purpose": "phone_verification", "code": "654321", "expires_at": expires},
			SMSCodeRequested{UserID: "u-1", Phone: "+14155550100", Purpose: SMSPurposePhoneVerification, Code: "654321", ExpiresAt: expires}},
		{"phone verified", SubjectPhoneVerified, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "Ann", "phone": "+14155550100"},
			PhoneVerified{UserID: "u-1", Email: "a@example.com", Name: "Ann", Phone: "+14155550100"}},
		{"phone replaced", SubjectPhoneVerified, map[string]any{"user_id": "u-1", "email": "a@example.com", "name": "",
			"phone": "+14155550100", "previous_phone": "+447700900123"},
			PhoneVerified{UserID: "u-1", Email: "a@example.com", Phone: "+14155550100", PreviousPhone: "+447700900123"}},
		{"refresh reused", SubjectRefreshReused, map[string]any{"user_id": "", "session_id": "", "ip": "i", "user_agent": "ua"},
			RefreshReused{IP: "i", UserAgent: "ua"}},
		{"logged out", SubjectLoggedOut, map[string]any{"user_id": "u-1", "session_ids": []string{"s-1", "s-2"}},
			LoggedOut{UserID: "u-1", SessionIDs: []string{"s-1", "s-2"}}},
		{"logged out, none ended", SubjectLoggedOut, map[string]any{"user_id": "u-1", "session_ids": ended},
			LoggedOut{UserID: "u-1", SessionIDs: ended}},
		{"logged out everywhere", SubjectLoggedOutAll, map[string]any{"user_id": "u-1", "sessions_ended": 0},
			LoggedOutAll{UserID: "u-1"}},
		{"identity unlinked by a proof", SubjectIdentityUnlinked, map[string]any{"user_id": "u-1", "provider": "google", "how": "address_proven"},
			IdentityUnlinked{UserID: "u-1", Provider: "google", How: "address_proven"}},
		{"identity linked by a proof", SubjectIdentityLinked, map[string]any{"user_id": "u-1", "provider": "google", "how": "address_proven"},
			IdentityLinked{UserID: "u-1", Provider: "google", How: "address_proven"}},
		// auth, admin: actor_id and actor_session_id added to each
		{"roles set", SubjectUserRolesSet, map[string]any{"user_id": "u-1", "roles": []string{"admin", "user"}, "actor_id": "a-1", "actor_session_id": "as-1"},
			UserRolesSet{UserID: "u-1", Roles: []string{"admin", "user"}, Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"disabled", SubjectUserDisabled, map[string]any{"user_id": "u-1", "actor_id": "a-1", "actor_session_id": ""},
			UserDisabled{UserID: "u-1", Actor: Actor{ActorID: "a-1"}}},
		{"enabled", SubjectUserEnabled, map[string]any{"user_id": "u-1", "actor_id": "a-1", "actor_session_id": "as-1"},
			UserEnabled{UserID: "u-1", Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"role created", SubjectRoleCreated, map[string]any{"role": "r", "permissions": []string{}, "actor_id": "a-1", "actor_session_id": "as-1"},
			RoleCreated{Role: "r", Permissions: []string{}, Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"role deleted", SubjectRoleDeleted, map[string]any{"role": "r", "actor_id": "a-1", "actor_session_id": "as-1"},
			RoleDeleted{Role: "r", Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"webhook created", SubjectWebhookCreated, map[string]any{"webhook_id": "w-1", "url": "https://h/x", "events": []string{"auth.user.registered"}, "actor_id": "a-1", "actor_session_id": "as-1"},
			WebhookCreated{WebhookID: "w-1", URL: "https://h/x", Events: []string{"auth.user.registered"}, Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"webhook deleted", SubjectWebhookDeleted, map[string]any{"webhook_id": "w-1", "url": "https://h/x", "actor_id": "a-1", "actor_session_id": "as-1"},
			WebhookDeleted{WebhookID: "w-1", URL: "https://h/x", Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"webhook secret rotated", SubjectWebhookSecretRotated, map[string]any{"webhook_id": "w-1", "previous_expires_at": "2026-01-02T03:04:05.678901Z", "actor_id": "a-1", "actor_session_id": "as-1"},
			WebhookSecretRotated{WebhookID: "w-1", PreviousExpiresAt: sampleTime, Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"webhook enabled", SubjectWebhookEnabled, map[string]any{"webhook_id": "w-1", "actor_id": "a-1", "actor_session_id": "as-1"},
			WebhookEnabled{WebhookID: "w-1", Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		{"flag changed", SubjectFlagChanged, map[string]any{"flag": "passkeys", "enabled": false, "actor_id": "a-1", "actor_session_id": "as-1"},
			FlagChanged{Flag: "passkeys", Actor: Actor{ActorID: "a-1", ActorSessionID: "as-1"}}},
		// token-worker
		{"webhook disabled", SubjectWebhookDisabled, map[string]any{"user_id": "u-1", "email": "a@x", "name": "A", "webhook_id": "w-1", "url": "https://h/x",
			"failing_since": "2026-01-02T03:04:05.678901Z", "last_error": "HTTP 500"},
			WebhookDisabled{UserID: "u-1", Email: "a@x", Name: "A", WebhookID: "w-1", URL: "https://h/x", FailingSince: sampleTime, LastError: "HTTP 500"}},
	}
	// oauth, signin (before the store sets user_id)
	for _, c := range []tc{
		{"linked by its user", SubjectIdentityLinked, map[string]any{"provider": "google", "subject": "sub-1", "how": "signed_in_user", "session_id": "s-1", "ip": "", "user_agent": ""},
			IdentityLinked{Provider: "google", Subject: "sub-1", How: "signed_in_user", SessionID: "s-1", Client: &Client{}}},
		{"linked to a verified address", SubjectIdentityLinked, map[string]any{"provider": "google", "subject": "sub-1", "how": "verified_email", "ip": "i", "user_agent": "ua"},
			IdentityLinked{Provider: "google", Subject: "sub-1", How: "verified_email", Client: &Client{IP: "i", UserAgent: "ua"}}},
		{"signed in", SubjectSignedIn, map[string]any{"provider": "github", "subject": "42", "how": "identity", "ip": "i", "user_agent": ""},
			SignedIn{Provider: "github", Subject: "42", How: "identity", IP: "i"}},
		{"registered by oauth", SubjectRegistered, map[string]any{"method": "oauth", "provider": "github", "ip": "i", "user_agent": "ua"},
			Registered{Method: "oauth", Provider: "github", IP: "i", UserAgent: "ua"}},
		{"account replaced", SubjectUnverifiedAccountReplaced, map[string]any{"replaced_user_id": "u-0", "provider": "google", "ip": "", "user_agent": "ua"},
			UnverifiedAccountReplaced{ReplacedUserID: "u-0", Provider: "google", UserAgent: "ua"}},
		{"register existing by oauth", SubjectRegisterExisting, map[string]any{"email": "a@example.com", "name": "", "provider": "github"},
			RegisterExisting{Email: "a@example.com", Provider: "github"}},
		{"verification by oauth", SubjectVerificationRequested, map[string]any{"email": "a@example.com", "name": "Ann", "token": "tok-2", "expires_at": expires.UTC(), "provider": "github"},
			VerificationRequested{Email: "a@example.com", Name: "Ann", Token: "tok-2", ExpiresAt: expires.UTC(), Provider: "github"}},
		{"unlinked by its user", SubjectIdentityUnlinked, map[string]any{"provider": "github", "session_id": "s-1", "ip": "i", "user_agent": ""},
			IdentityUnlinked{Provider: "github", SessionID: "s-1", Client: &Client{IP: "i"}}},
	} {
		c.name = "oauth: " + c.name
		c.old, c.typed = oauth(c.old, c.typed)
		cases = append(cases, c)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			covered[c.subject] = true
			if s, _ := Lookup(c.subject); reflect.TypeOf(c.typed) != s.Payload {
				t.Fatalf("%T is not the payload of %s (%v)", c.typed, c.subject, s.Payload)
			}
			before, err := NewEnvelope(keys, "0190-id", c.subject, time.Now(), "", c.old)
			if err != nil {
				t.Fatal(err)
			}
			after, err := NewEnvelope(keys, "0190-id", c.subject, time.Now(), "", c.typed)
			if err != nil {
				t.Fatal(err)
			}
			if before.UserID != after.UserID || before.ActorID != after.ActorID {
				t.Errorf("envelope user %q actor %q, before %q %q", after.UserID, after.ActorID, before.UserID, before.ActorID)
			}
			b, a := withoutSeal(t, keys, before), withoutSeal(t, keys, after)
			if !bytes.Equal(a, b) {
				t.Errorf("payload\n got %s\nwant %s", a, b)
			}
		})
	}
	for _, s := range Catalog() {
		if !covered[s.Subject] {
			t.Errorf("%s: no case", s.Subject)
		}
	}
}

// withoutSeal is the envelope's payload with its sealed token and code (random each
// time) replaced by what they open to.
func withoutSeal(t *testing.T, keys *keyring.Keyring, env Envelope) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		t.Fatal(err)
	}
	opened := false
	for field, open := range map[string]func(*keyring.Keyring) (string, error){FieldTokenSealed: env.Token, FieldCodeSealed: env.Code} {
		if v, err := open(keys); err == nil {
			m[field], _ = json.Marshal("opens to " + v)
			opened = true
		}
	}
	if !opened {
		return env.Payload
	}
	b, _ := json.Marshal(m)
	return b
}
