-- The language a person reads the desk in (zh-CN, en); NULL: the desk's.
ALTER TABLE users ADD COLUMN language TEXT;
