-- depends: 0014_no_default_session_metadata
-- Locks taken: ACCESS EXCLUSIVE on conversation_sessions for a moment (a nullable column without a default and a NOT VALID check: catalog only).
-- A title a person gives a conversation (api.rename_session), shown by
-- api.list_conversations and api.preview_claim.  NULL is "no title".
--
-- Online: a nullable column without a default is a catalog change (no table
-- rewrite), and a CHECK added NOT VALID is enforced on every write from now
-- on without scanning the rows already there (every one of them has a NULL
-- title, which passes).  Migration 0017 validates it in a transaction of its
-- own, under SHARE UPDATE EXCLUSIVE (reads and writes go on); validating here
-- would scan the whole table while this transaction still holds ACCESS
-- EXCLUSIVE from the ALTER TABLE.
--
-- The old functions keep working meanwhile: they read and return the row
-- type, which gains a column; the new ones are loaded after the migrations.
--
-- Timeouts (SET LOCAL: yoyo runs this migration in a transaction of its own):
-- a lock that cannot be had in 5 s (a long transaction on the table) fails the
-- migration, undone whole, instead of queueing every request behind it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- yoyo runs this migration in one transaction and records it, so it never runs
-- twice: a non-robust statement cannot meet a half-done state.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE public.conversation_sessions ADD COLUMN title text;

-- Within the same transaction as the column, so no row can be written without
-- the check; the length is the API's limit (api.rename_session also refuses
-- control characters, with 22023 before this check is reached).
ALTER TABLE public.conversation_sessions
    -- Run once, in one transaction, like the column above.
    -- squawk-ignore prefer-robust-stmts
    ADD CONSTRAINT conversation_sessions_title_length CHECK (char_length(title) <= 200) NOT VALID;

COMMENT ON COLUMN public.conversation_sessions.title IS
    'The title its owner gave the conversation (api.rename_session): 1-200 characters, or NULL for none.';
