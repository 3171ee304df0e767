-- The people of the desk sign their own replies: the name a customer reads
-- (Chinese and/or Latin), a phone number, and the lines under the name.
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;
-- One signature line per text line.
ALTER TABLE users ADD COLUMN signature TEXT;
