// The older Node.js backend's session endpoint, as that system was built, as
// the baseline of `make bench`'s "http" section (bench/http.py).
//
// A faithful port of what served POST /api/chat/session: an Express app with
// express.json(), its optionalAuth middleware (an optional Bearer JWT checked
// with jsonwebtoken; without one, or with a bad one, the caller is a guest),
// the route that makes a session id and calls
// postgresMemoryService.createOrGetSession, and its {success, data} envelope.
// createOrGetSession is bench/baselines/node_port.py statement for statement:
// a client checked out of a pg.Pool, up to three round trips (SELECT the
// session, SELECT the user, INSERT ... RETURNING *), each its own autocommit
// transaction, on the older schema (bench/baselines/node_schema.sql).  It is a
// baseline: its races and its defaults are kept on purpose.
//
// Environment: DATABASE_URL (libpq-style URL; a Unix socket as ?host=/dir),
// PORT (default 3001), HOST (default 127.0.0.1), JWT_SECRET, PG_POOL_MAX
// (default 10, pg's own default).
'use strict';

const express = require('express');
const jwt = require('jsonwebtoken');
const { Pool } = require('pg');

const JWT_SECRET = process.env.JWT_SECRET || 'your-secret-key';
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.PG_POOL_MAX || 10),
});

// -- services/postgresMemoryService.js -------------------------------------

async function createOrGetSession(sessionId, userId = null, metadata = {}) {
  const client = await pool.connect();
  try {
    const existing = await client.query(
      'SELECT * FROM conversation_sessions WHERE session_id = $1', [sessionId]);
    if (existing.rows.length > 0) {
      await client.query(
        'UPDATE conversation_sessions SET updated_at = NOW() WHERE session_id = $1', [sessionId]);
      return existing.rows[0];
    }

    let finalUserId = userId;
    const finalMetadata = { ...metadata };
    if (userId && userId !== 'anonymous') {
      try {
        const user = await client.query('SELECT id FROM users WHERE id = $1', [userId]);
        if (user.rows.length === 0) {
          finalUserId = null;
          finalMetadata.anonymousUserId = userId;
        }
      } catch (error) {
        // Not a UUID at all: a guest id.
        finalUserId = null;
        finalMetadata.anonymousUserId = userId;
      }
    } else if (userId === 'anonymous') {
      finalUserId = null;
    }

    const result = await client.query(
      'INSERT INTO conversation_sessions (session_id, user_id, metadata) VALUES ($1, $2, $3) RETURNING *',
      [sessionId, finalUserId, JSON.stringify(finalMetadata)]);
    return result.rows[0];
  } finally {
    client.release();
  }
}

// -- middleware/auth.js ------------------------------------------------------

function optionalAuth(req, res, next) {
  const authHeader = req.headers.authorization;
  const token = authHeader && authHeader.split(' ')[1];
  if (!token) {
    req.user = null;
    return next();
  }
  jwt.verify(token, JWT_SECRET, (err, user) => {
    req.user = err ? null : user;
    next();
  });
}

// -- routes/chat.js ----------------------------------------------------------

const chat = express.Router();

chat.post('/session', optionalAuth, async (req, res) => {
  try {
    const userId = (req.user && req.user.userId) || req.body.userId || 'anonymous';
    const context = req.body.context || {};
    const sessionId = `session_${Date.now()}_${Math.random().toString(36).substr(2, 9)}`;
    const session = await createOrGetSession(sessionId, userId, {
      context: 'customer_support',
      project: 'stripe_support',
      ...context,
    });
    res.status(201).json({
      success: true,
      data: { sessionId: session.session_id, userId: session.user_id, createdAt: session.created_at },
    });
  } catch (error) {
    console.error('Error creating session:', error.message);
    res.status(500).json({ success: false, error: { message: 'Failed to create session' } });
  }
});

// -- server.js ---------------------------------------------------------------

const app = express();
app.use(express.json());
app.use('/api/chat', chat);
app.get('/health', (req, res) => res.json({ success: true, data: { status: 'ok' } }));

const port = Number(process.env.PORT || 3001);
const host = process.env.HOST || '127.0.0.1';
const server = app.listen(port, host, () => {
  console.log(`older backend (baseline) on http://${host}:${port}/`);
});

function stop() {
  server.close(() => pool.end().then(() => process.exit(0)));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
