-- dblink may have been installed before chatmem and used by others: keep it.
SELECT 1;
