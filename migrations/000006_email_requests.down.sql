DROP TABLE IF EXISTS email_requests;
