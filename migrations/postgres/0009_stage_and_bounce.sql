-- What each mail's stage word means (first_response, follow_up, reassigned,
-- escalated, closed), whatever language or spelling it was written in: the
-- SLA and drafting decide on the stage, `stage` keeps the word as written.
ALTER TABLE messages ADD COLUMN stage_kind TEXT;
UPDATE messages SET stage_kind = 'first_response' WHERE stage IN ('初次响应', '初次響應');
UPDATE messages SET stage_kind = 'follow_up' WHERE stage IN ('跟进', '跟進');
UPDATE messages SET stage_kind = 'reassigned' WHERE stage = '案例重新分配';
UPDATE messages SET stage_kind = 'escalated' WHERE stage IN ('案例升级', '案例升級');
UPDATE messages SET stage_kind = 'closed' WHERE stage IN ('案例关闭', '案例關閉');

-- A bounce's account of the mail it returns (returned Message-ID and
-- subject, recipients, status, reason), as JSON; NULL for other mail.
ALTER TABLE messages ADD COLUMN bounce_json TEXT;
