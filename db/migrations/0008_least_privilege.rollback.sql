-- The CREATE privilege is not given back: no chatmem version needs it, and
-- the role may be used by another database of this cluster.
SELECT 1;
