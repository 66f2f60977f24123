-- Locks taken: on a fresh install nothing that matters (the tables are empty); on a legacy database that chatmem migrate prepared online first, ACCESS EXCLUSIVE on the four core tables, held for this migration's catalog-only changes (well under a second).
-- The core tables, created on an empty database or upgraded in place from the
-- older Node.js system's shape (users; conversation_sessions with a NOT NULL
-- user_id and a plain foreign key; messages and Q&A pairs).  Every statement
-- is written so that running it on either shape ends in the same schema.
--
-- Timeouts.  yoyo runs this migration in one transaction of its own, so SET
-- LOCAL ends with it.  On a fresh install every statement meets empty tables;
-- on a legacy database chatmem migrate has done the heavy work online first
-- (thin_client/chatmem/legacy_upgrade.py), so what is left changes only the
-- catalog (each scan below is skipped when it finds that work done): well
-- under the minute.  A lock that cannot be had in 5 s (a long transaction on a
-- core table) fails the migration, undone whole, instead of queueing every
-- request of the product behind it; run chatmem migrate again.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- On a legacy database, take every lock this migration needs at once,
-- children before parents.  A writer of the older backend that holds a
-- message or Q&A pair row waits for its session row (the foreign key's KEY
-- SHARE); had this migration locked conversation_sessions first and then
-- waited for that writer's table, the two would deadlock and PostgreSQL would
-- fail the writer.  On a fresh install the tables do not exist yet: nothing.
DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['conversation_messages', 'qa_pairs', 'conversation_sessions', 'users'] LOOP
        IF to_regclass('public.' || v_table) IS NOT NULL THEN
            EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', v_table);
        END IF;
    END LOOP;
END
$$;

-- squawk (make lint, tests/test_squawk.py).  Each rule silenced for the whole
-- file is silenced because its reason holds for every statement of this file
-- that the rule flags, as said for each.
--
-- prefer-robust-stmts (every ALTER TABLE ... ALTER COLUMN): yoyo runs this
-- migration in one transaction and records it, so it never runs twice: a
-- non-robust statement cannot meet a half-done state.  (And each is written to
-- end in the same schema from a fresh or a legacy shape.)
-- squawk-ignore-file prefer-robust-stmts
-- adding-not-nullable-field (every SET NOT NULL): on a fresh install this
-- migration creates the tables empty; on a legacy database every one of these
-- columns is NOT NULL already when this runs (users' name, email and
-- password_hash were NOT NULL in the older schema; chatmem migrate set the
-- others online, from validated CHECKs), and SET NOT NULL on a column that is
-- NOT NULL already does not scan the table.
-- squawk-ignore-file adding-not-nullable-field
-- require-concurrent-index-creation (the five CREATE INDEX IF NOT EXISTS): on
-- a fresh install this migration creates the tables empty; on a legacy database
-- chatmem migrate built each of these indexes CONCURRENTLY first, under the
-- same name, so IF NOT EXISTS finds it and builds nothing.  (CONCURRENTLY
-- cannot run inside yoyo's transaction anyway.)
-- squawk-ignore-file require-concurrent-index-creation
-- prefer-text-field (the three session_id varchar(255) columns): the older
-- system's type for session ids, kept so that a legacy database keeps its key
-- column and the foreign keys to it as they are, and the limit the API states
-- and checks (chatmem_internal.check_id: 1 to 255 characters), so it has no
-- reason to change; on a fresh install the tables are created empty here.
-- squawk-ignore-file prefer-text-field

CREATE EXTENSION IF NOT EXISTS pgcrypto;

DO $$
BEGIN
    CREATE ROLE chatmem_app NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- roles are cluster-wide: another database of this cluster made it
END
$$;

CREATE TABLE IF NOT EXISTS public.users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    name          text        NOT NULL,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.conversation_sessions (
    session_id varchar(255) NOT NULL PRIMARY KEY,
    user_id    uuid,
    metadata   jsonb        NOT NULL DEFAULT '{}',
    created_at timestamptz  NOT NULL DEFAULT now(),
    updated_at timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.conversation_messages (
    id         bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id varchar(255) NOT NULL,
    role       text         NOT NULL,
    content    text         NOT NULL,
    created_at timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.qa_pairs (
    id         bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id varchar(255) NOT NULL,
    question   text         NOT NULL,
    answer     text         NOT NULL,
    created_at timestamptz  NOT NULL DEFAULT now()
);

-- Upgrade in place: column types and defaults.  On a fresh install these are
-- no-ops (same type, no USING clause, so no table rewrite).
DO $$
DECLARE
    v_table  text;
    v_column text;
    v_start  bigint;
BEGIN
    -- The older system used timestamp without time zone; its values are read
    -- in the server's TimeZone, which is what that system wrote them in.
    FOR v_table, v_column IN
        SELECT c.table_name, c.column_name
          FROM information_schema.columns c
         WHERE c.table_schema = 'public'
           AND c.table_name IN ('users', 'conversation_sessions', 'conversation_messages', 'qa_pairs')
           AND c.column_name IN ('created_at', 'updated_at')
    LOOP
        IF (SELECT data_type FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = v_table AND column_name = v_column)
           <> 'timestamp with time zone' THEN
            EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I TYPE timestamptz', v_table, v_column);
        END IF;
        -- Skipped where the column is NOT NULL already (a fresh install, or a
        -- large legacy database that chatmem migrate prepared online first):
        -- this scan would otherwise run while the locks taken above are held.
        IF (SELECT is_nullable FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = v_table AND column_name = v_column) = 'YES' THEN
            EXECUTE format('UPDATE public.%I SET %I = now() WHERE %I IS NULL', v_table, v_column, v_column);
        END IF;
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I SET DEFAULT now(), ALTER COLUMN %I SET NOT NULL',
                       v_table, v_column, v_column);
    END LOOP;

    -- Serial ids become identity columns, continuing after the highest id.
    FOR v_table IN SELECT unnest(ARRAY['conversation_messages', 'qa_pairs']) LOOP
        IF (SELECT is_identity FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = v_table AND column_name = 'id') = 'NO' THEN
            EXECUTE format('ALTER TABLE public.%I ALTER COLUMN id DROP DEFAULT', v_table);
            EXECUTE format('DROP SEQUENCE IF EXISTS public.%I', v_table || '_id_seq');
            EXECUTE format('ALTER TABLE public.%I ALTER COLUMN id TYPE bigint', v_table);
            EXECUTE format('SELECT coalesce(max(id), 0) + 1 FROM public.%I', v_table) INTO v_start;
            EXECUTE format(
                'ALTER TABLE public.%I ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (START WITH %s)',
                v_table, v_start);
        END IF;
    END LOOP;

    -- metadata: the older system allowed NULL and any JSON; we hold objects only.
    IF (SELECT data_type FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'conversation_sessions'
           AND column_name = 'metadata') <> 'jsonb' THEN
        ALTER TABLE public.conversation_sessions ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb;
    END IF;
END
$$;

ALTER TABLE public.users
    ALTER COLUMN id SET DEFAULT gen_random_uuid(),
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN email SET NOT NULL,
    ALTER COLUMN password_hash SET NOT NULL;

-- The older system's varchar columns become text.  Only where they are not
-- text yet: even a change to the same type rebuilds the indexes and
-- re-checks the constraints on the column, under the locks this migration
-- holds to its end.
DO $$
DECLARE
    v_column record;
BEGIN
    FOR v_column IN
        SELECT * FROM (VALUES ('users', 'name'), ('users', 'email'), ('users', 'password_hash'),
                              ('conversation_messages', 'role')) AS c(table_name, column_name)
    LOOP
        IF (SELECT data_type FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = v_column.table_name
               AND column_name = v_column.column_name) <> 'text' THEN
            EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I TYPE text',
                           v_column.table_name, v_column.column_name);
        END IF;
    END LOOP;
END
$$;

-- Skipped (a scan while the locks above are held) where a validated CHECK
-- already proves every row right: a legacy database prepared online first.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                    WHERE conrelid = 'public.conversation_sessions'::regclass
                      AND conname = 'conversation_sessions_metadata_is_object' AND convalidated)
       OR (SELECT is_nullable FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = 'conversation_sessions'
              AND column_name = 'metadata') = 'YES' THEN
        UPDATE public.conversation_sessions
           SET metadata = '{}'
         WHERE metadata IS NULL OR jsonb_typeof(metadata) <> 'object';
    END IF;
END
$$;

ALTER TABLE public.conversation_sessions
    -- The point of chatmem: a guest's session has no user (the older system's
    -- own migrate_anonymous_users.sql made the same change, so its clients
    -- already met NULL here), and every existing row keeps its user_id.  On a
    -- fresh install, and after chatmem migrate's online step, the column is
    -- nullable already and this changes nothing.
    -- squawk-ignore ban-drop-not-null
    ALTER COLUMN user_id DROP NOT NULL,
    ALTER COLUMN metadata SET DEFAULT '{}',
    ALTER COLUMN metadata SET NOT NULL;

ALTER TABLE public.conversation_messages
    ALTER COLUMN session_id SET NOT NULL,
    ALTER COLUMN role SET NOT NULL,
    ALTER COLUMN content SET NOT NULL;

ALTER TABLE public.qa_pairs
    ALTER COLUMN session_id SET NOT NULL,
    ALTER COLUMN question SET NOT NULL,
    ALTER COLUMN answer SET NOT NULL;

-- Emails are unique without regard to case.  Two legacy accounts that differ
-- only in case cannot be merged by a machine: stop and name them.
DO $$
DECLARE
    v_clashes text;
BEGIN
    -- A valid unique index on lower(email) already proves there is no clash
    -- (a legacy database that chatmem migrate prepared online first).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_index
                WHERE indexrelid = to_regclass('public.users_email_lower_key') AND indisvalid AND indisunique) THEN
        RETURN;
    END IF;
    SELECT string_agg(clash.spellings, '; ' ORDER BY clash.spellings)
      INTO v_clashes
      FROM (SELECT string_agg(email, ' = ' ORDER BY email) AS spellings
              FROM public.users
             GROUP BY lower(email)
            HAVING count(*) > 1) AS clash;
    IF v_clashes IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = '23505',
            MESSAGE = 'users differ only in the case of their email: ' || v_clashes,
            HINT = 'Merge or rename these accounts, then run chatmem migrate again; nothing was changed.';
    END IF;
END
$$;

-- The older system's unique email as typed gives way to the unique index on
-- lower(email) made by the next statement, in the same transaction: a stronger
-- guarantee (emails unique whatever their case imply emails unique as typed),
-- with no moment in between that another session could see.  On a legacy
-- database chatmem migrate built that index already; on a fresh install there
-- is no users_email_key to drop.
-- squawk-ignore ban-drop-constraint
ALTER TABLE public.users DROP CONSTRAINT IF EXISTS users_email_key;
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON public.users (lower(email));

-- Foreign keys with the names and delete rules the design needs; legacy
-- constraints of the same name are replaced only when they differ.
DO $$
DECLARE
    v_fk record;
BEGIN
    FOR v_fk IN
        SELECT * FROM (VALUES
            ('conversation_sessions', 'conversation_sessions_user_id_fkey',
             'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL'),
            ('conversation_messages', 'conversation_messages_session_id_fkey',
             'FOREIGN KEY (session_id) REFERENCES conversation_sessions(session_id) ON DELETE CASCADE'),
            ('qa_pairs', 'qa_pairs_session_id_fkey',
             'FOREIGN KEY (session_id) REFERENCES conversation_sessions(session_id) ON DELETE CASCADE')
        ) AS wanted(table_name, constraint_name, definition)
    LOOP
        IF (SELECT pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conname = v_fk.constraint_name
               AND conrelid = format('public.%I', v_fk.table_name)::regclass)
           IS DISTINCT FROM v_fk.definition THEN
            EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT IF EXISTS %I',
                           v_fk.table_name, v_fk.constraint_name);
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s',
                           v_fk.table_name, v_fk.constraint_name,
                           replace(replace(v_fk.definition, 'users(', 'public.users('),
                                   'conversation_sessions(', 'public.conversation_sessions('));
        END IF;
    END LOOP;
END
$$;

-- Replaced only where missing, different or not validated: re-adding a CHECK
-- scans the whole table under ACCESS EXCLUSIVE.
DO $$
DECLARE
    v_check record;
BEGIN
    FOR v_check IN
        SELECT * FROM (VALUES
            ('conversation_sessions', 'conversation_sessions_metadata_is_object',
             'CHECK ((jsonb_typeof(metadata) = ''object''::text))'),
            ('conversation_messages', 'conversation_messages_role_check',
             'CHECK ((role = ANY (ARRAY[''user''::text, ''assistant''::text, ''system''::text])))')
        ) AS wanted(table_name, constraint_name, definition)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                        WHERE conrelid = format('public.%I', v_check.table_name)::regclass
                          AND conname = v_check.constraint_name AND convalidated
                          AND pg_get_constraintdef(oid) = v_check.definition) THEN
            EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT IF EXISTS %I, ADD CONSTRAINT %I %s',
                           v_check.table_name, v_check.constraint_name, v_check.constraint_name,
                           v_check.definition);
        END IF;
    END LOOP;
END
$$;

COMMENT ON COLUMN public.conversation_sessions.user_id IS
    'User ID for authenticated users. NULL for anonymous/guest users.';
COMMENT ON COLUMN public.conversation_sessions.metadata IS
    'Session metadata (a JSON object). anonymousUserId holds the guest id of an unclaimed guest session.';

-- The claim: a guest's sessions not yet owned by anyone.  Also serves listing
-- a guest's sessions newest first.
CREATE INDEX IF NOT EXISTS conversation_sessions_guest_idx
    ON public.conversation_sessions ((metadata ->> 'anonymousUserId'), created_at DESC)
    WHERE user_id IS NULL;
-- Listing a registered user's sessions newest first.
CREATE INDEX IF NOT EXISTS conversation_sessions_user_idx
    ON public.conversation_sessions (user_id, created_at DESC);
-- A session's messages and Q&A pairs in order (also serves the cascading delete).
CREATE INDEX IF NOT EXISTS conversation_messages_session_idx
    ON public.conversation_messages (session_id, id);
CREATE INDEX IF NOT EXISTS qa_pairs_session_idx
    ON public.qa_pairs (session_id, id);

REVOKE ALL ON public.users, public.conversation_sessions, public.conversation_messages, public.qa_pairs
    FROM PUBLIC, chatmem_app;
