-- A validated constraint cannot be made NOT VALID again, and need not be:
-- rolling back 0018 replaces it with the old one.
SELECT 1;
