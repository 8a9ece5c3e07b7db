-- A phone number, set only once proven by an SMS code (so every stored number is a
-- verified one), unique across accounts: an SMS sign-in finds at most one account.
ALTER TABLE users
    ADD COLUMN phone             text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    ADD COLUMN phone_verified_at timestamptz,
    ADD CONSTRAINT users_phone_verified_check CHECK ((phone IS NULL) = (phone_verified_at IS NULL));
CREATE UNIQUE INDEX users_phone_key ON users (phone) WHERE phone IS NOT NULL;

-- One-time codes share the table of links. otp_email: an emailed sign-in code
-- (code_hash) and its link (token_hash), one row, so using either uses both; otp_sms: an
-- SMS sign-in code (token_hash is random, never sent); phone_verification: the code
-- proving the number in phone. A code's hash binds it to its address or number, so a
-- code is looked up with the address in one statement. attempts counts wrong codes:
-- the fifth burns the row.
ALTER TABLE one_time_tokens
    ADD COLUMN code_hash bytea CHECK (length(code_hash) = 32),
    ADD COLUMN attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN phone     text,
    DROP CONSTRAINT one_time_tokens_purpose_check,
    ADD CONSTRAINT one_time_tokens_purpose_check CHECK (purpose IN
        ('email_verification', 'password_reset', 'otp_email', 'otp_sms', 'phone_verification')),
    ADD CONSTRAINT one_time_tokens_code_check CHECK (
        (code_hash IS NOT NULL) = (purpose IN ('otp_email', 'otp_sms', 'phone_verification'))
        AND (phone IS NOT NULL) = (purpose = 'phone_verification'));
-- At most one live code per account and purpose (a new one retires the older, and two
-- written at once cannot both live): found in one index probe.
CREATE UNIQUE INDEX one_time_tokens_live_code_idx ON one_time_tokens (user_id, purpose)
    WHERE used_at IS NULL AND code_hash IS NOT NULL;

-- A request for a sign-in code waits in email_requests like a reset, so a known and an
-- unknown address or number cost the same before the 202; otp_sms seals the number.
ALTER TABLE email_requests
    DROP CONSTRAINT email_requests_kind_check,
    ADD CONSTRAINT email_requests_kind_check CHECK (kind IN ('forgot', 'resend', 'otp_email', 'otp_sms'));
