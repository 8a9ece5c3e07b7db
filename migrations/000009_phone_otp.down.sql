DELETE FROM email_requests WHERE kind IN ('otp_email', 'otp_sms');
ALTER TABLE email_requests
    DROP CONSTRAINT email_requests_kind_check,
    ADD CONSTRAINT email_requests_kind_check CHECK (kind IN ('forgot', 'resend'));
DROP INDEX IF EXISTS one_time_tokens_live_code_idx;
DELETE FROM one_time_tokens WHERE purpose IN ('otp_email', 'otp_sms', 'phone_verification');
ALTER TABLE one_time_tokens
    DROP CONSTRAINT one_time_tokens_code_check,
    DROP CONSTRAINT one_time_tokens_purpose_check,
    ADD CONSTRAINT one_time_tokens_purpose_check CHECK (purpose IN ('email_verification', 'password_reset')),
    DROP COLUMN phone,
    DROP COLUMN attempts,
    DROP COLUMN code_hash;
DROP INDEX IF EXISTS users_phone_key;
ALTER TABLE users
    DROP CONSTRAINT users_phone_verified_check,
    DROP COLUMN phone_verified_at,
    DROP COLUMN phone;
