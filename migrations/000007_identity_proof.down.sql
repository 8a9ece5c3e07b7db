ALTER TABLE one_time_tokens
    DROP CONSTRAINT one_time_tokens_identity_check,
    DROP COLUMN identity_email,
    DROP COLUMN identity_subject,
    DROP COLUMN identity_provider;
ALTER TABLE identities DROP COLUMN attached_unverified;
