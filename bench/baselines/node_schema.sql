-- The older Node.js system's schema, as it ran in production once guests
-- could chat: its setup script's tables (see tests/fixtures/legacy_schema.sql),
-- then its migrate_anonymous_users.sql, which made conversation_sessions.user_id
-- nullable (a guest's session has user_id NULL and the guest id in
-- metadata.anonymousUserId) and re-created the foreign key with ON DELETE SET NULL.
--
-- Kept as the benchmark's baseline, so it is deliberately NOT improved:
-- no index on the guest id (the older registration found a guest's sessions
-- with a sequential scan), metadata nullable and unchecked, timestamps
-- without time zone, serial ids, case-sensitive unique email.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    email VARCHAR(255) UNIQUE NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE conversation_sessions (
    session_id VARCHAR(255) PRIMARY KEY,
    user_id UUID,
    metadata JSONB,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT conversation_sessions_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL
);

COMMENT ON COLUMN conversation_sessions.user_id IS
    'User ID for authenticated users. NULL for anonymous/guest users.';

CREATE TABLE conversation_messages (
    id SERIAL PRIMARY KEY,
    session_id VARCHAR(255) REFERENCES conversation_sessions(session_id),
    role VARCHAR(50) NOT NULL,
    content TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE qa_pairs (
    id SERIAL PRIMARY KEY,
    session_id VARCHAR(255) REFERENCES conversation_sessions(session_id),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- The only secondary index the older system had on sessions.
CREATE INDEX idx_sessions_user_id ON conversation_sessions(user_id);
