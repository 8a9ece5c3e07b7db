-- An identity linked while its account's address was unproven. Proving the address
-- (email verification or password reset) unlinks it: whoever signed in with a
-- provider that did not vouch for the address keeps nothing the owner later claims.
ALTER TABLE identities ADD COLUMN attached_unverified boolean NOT NULL DEFAULT false;
UPDATE identities i SET attached_unverified = true
    FROM users u WHERE u.id = i.user_id AND u.email_verified_at IS NULL;

-- A verification token sent for a provider sign-in whose address the provider did
-- not vouch for: using it proves the address and links that identity, as a password
-- sign-up's verification proves the account its password opens.
ALTER TABLE one_time_tokens
    ADD COLUMN identity_provider text,
    ADD COLUMN identity_subject  text,
    ADD COLUMN identity_email    text NOT NULL DEFAULT '',
    ADD CONSTRAINT one_time_tokens_identity_check CHECK (
        (identity_provider IS NULL) = (identity_subject IS NULL)
        AND (identity_provider IS NULL OR purpose = 'email_verification'));
