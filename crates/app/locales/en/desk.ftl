# The web desk in English. Every message has its twin in zh-CN/desk.ftl;
# a unit test keeps the two catalogues and the code in step.

## Formats
format-datetime = %-d %b %Y %H:%M
duration-hour-unit = h
duration-minute-unit = m
bytes = { $count ->
    [one] {$count} byte
   *[other] {$count} bytes
}

## Navigation
nav-cases = Cases
nav-mine = Mine
nav-board = SLA board
nav-report = Report
nav-log-out = Log out

## Login
login-title = Log in
login-heading = Log in to the desk
login-name = Name
login-password = Password
login-submit = Log in
login-wrong = wrong name or password
login-name-locked = too many failed logins for this name: wait five minutes
login-client-limited = too many failed logins from this address: wait five minutes
login-busy = the desk is busy: try again in a second

## Errors
error-title = Error {$status}
error-back = Back to the cases
error-log-in-first = log in first
error-internal = the desk could not answer this request; the error is in the server's log
error-no-page = no such page
error-csrf = the form's CSRF token is missing or wrong: reload the page
error-cross-site = cross-site request refused
error-lead-only = this page is for the team lead
error-login-form-expired = the login form expired or came from elsewhere: open the login page again
error-no-case = no case {$key}
error-no-mail = case {$key} has no mail {$mail}
error-no-attachment = mail {$mail} has no attachment {$part}
error-raw-removed = retention removed this mail's raw bytes on {$at}; its text is still on the case page
error-not-text = {$name} is not a text file: download it instead
error-no-draft = no draft {$id}
error-draft-status = draft {$id} is {$status}, not {$expected}
error-draft-stale = draft {$id} changed since you opened it (revision {$seen} → {$current}): open it again
error-draft-unfit = {$problems}
error-draft-refused = {$why}
error-reply-empty = the reply is empty: reject the draft instead
error-reject-reason = say why the draft is rejected
error-name-owner = name an owner
error-no-account = no desk account named {$name}
error-no-kind = no reply kind {$kind}
error-no-language = the desk does not speak {$language}
error-note-empty = the note is empty
error-note-too-long = the note is {$bytes} bytes; a note holds at most {$max}
error-not-a-date = {$text} is not a date like 2026-11-23
error-period = the period must run forwards, at most three years

## The case list
cases-title = Cases
cases-search = Search
cases-priority = Priority
cases-customer = Customer
cases-status = Status
cases-any = any
cases-mine = mine
cases-waiting = waiting on us
cases-filter = Filter
cases-count = { $count ->
    [one] {$count} case
   *[other] {$count} cases
}
cases-page-of = page {$page} of {$pages}
cases-draft-link = draft {$id}
pager-newer = ← newer
pager-older = older →

## Table columns
col-case = Case
col-priority = Priority
col-customer = Customer
col-title = Title
col-status = Status
col-owner = Owner
col-sla = SLA
col-next-due = Next due
col-mails = Mails
col-last-mail = Last mail
col-draft = Draft
col-state = State
col-target = Target
col-left = Left
col-due = Due

## The case page
case-facts = Priority {$priority} · customer {$customer} · {$status} · { $mails ->
    [one] {$mails} mail
   *[other] {$mails} mails
}
case-thread = Thread
case-sla = SLA
case-sla-nothing = Nothing to measure yet (only machine mail).
case-owner = Owner:
case-nobody = nobody
case-assign-to = Assign to
case-assign = Assign
case-drafts = Drafts
case-no-draft = No draft.
case-write-reply = Write a reply
case-free-text = free text
case-from-template = from the { $kind } template
case-start = Start
case-replaces-pending = It replaces the case's pending draft, which stays in the audit trail.
case-analysis = Log analysis
case-similar = Similar resolved cases
case-none-yet = None yet.
case-events = Events
case-events-newest = The newest {$shown} of {$total} events.
case-audit-trail = audit trail
thread-range = Mails {$first}–{$last} of {$total}
thread-first = first
thread-older = older
thread-newer = newer
thread-newest = newest
notes-title = Internal notes
notes-hint = For the desk only: never sent, never in a draft.
notes-internal = internal
notes-placeholder = A note for the desk
notes-add = Add note

## One mail of a thread
mail-sent-at = (sent at {$offset})
mail-raw = raw .eml
mail-quoted = quoted history
mail-signature = signature
mail-attachments = Attachments:
mail-unnamed = (unnamed)
mail-view = view
mail-links = Links:
bounce-earlier-mail = an earlier mail
bounce-no-reason = no reason given
bounce-text = A reply to “{$subject}” (to {$to}) bounced: {$reason}

## Log analysis
analysis-none = No log analysed yet.
analysis-outcome = Outcome:
analysis-decisive = Decisive lines
analysis-codes = Codes:
analysis-kbs = KBs:
analysis-package = Package:
analysis-component = Component:

## SLA targets
target-met = met {$at}
target-met-late = met {$at} (late)
target-not-needed = not needed
target-left = {$left} left
target-due = due {$at}
target-paused = paused

## The draft editor
draft-title = Draft {$id}
editor-case = Case
editor-revision = revision {$revision}
editor-language = language {$language}
editor-approved = Approved by {$by}; it is being sent (Message-ID {$message_id}).
editor-saved = Saved as revision {$revision}.
editor-rejected = Rejected.
editor-not-approved = Not approved. The text was saved; fix these and approve again:
editor-only-warnings = Only warnings: tick “approve despite warnings” to send it as it is.
editor-last-error = Last send attempt:
editor-to = To:
editor-cc = Cc:
editor-subject = Subject:
editor-in-reply-to = In reply to
editor-save = Save
editor-approve = Approve and send
editor-accept-warnings = approve despite warnings (no greeting or signature; recorded)
editor-check-hint = Before it is sent the text is checked: template syntax or a fill-in such as <KB> left in it refuses the approval.
editor-snippets = Text modules
editor-snippets-hint = Type ::name and a space in the text, or insert one at the cursor.
editor-insert = insert
editor-snippet-unusable = not for this draft
editor-reject-reason = Reason for rejecting
editor-reject = Reject
editor-approved-by = Approved by {$by} at {$at}
editor-sent-at = Sent at {$at}
editor-rejected-by = Rejected by {$by}: {$reason}
problem-at = line {$line}, column {$column}: {$level}: {$what}
problem-in-subject = subject: {$level}: {$what}
flaw-empty-subject = the subject is empty
flaw-syntax-in-subject = template syntax {"{{"} left in the subject
flaw-empty-text = the text is empty
flaw-template-syntax = template syntax {$detail} left in the text
flaw-fill-in = the fill-in {$detail} is not filled in: replace it with what it asks for
flaw-no-greeting = the text does not start with a greeting
flaw-no-signature = no signature: the last lines do not name {$detail}
level-error = error
level-warning = warning

## Attachments shown as text
file-download = download
file-decisive-marked = { $count ->
    [one] {$count} decisive line marked
   *[other] {$count} decisive lines marked
}
file-cut = Only the first {$mib} MiB are shown.

## The SLA board
board-title = SLA board
board-title-mine = My SLA board
board-mine-hint = The cases you own; the team lead's board shows every open case.
board-as-of = Open cases as of
board-refresh = times left are business time. Refreshes every {$secs} s.
board-by-priority = By priority
board-by-owner = By owner
board-cases = Cases, most urgent first
board-more = … and {$count} more open cases, less urgent.
board-nobody = (nobody)

## The period report
report-heading = How the desk did
report-from = From
report-to = To (included)
report-show = Show
report-csv = Export CSV
report-total = Total
report-all = all
report-per-week = Per week
report-week-of = Week of
report-per-priority = Per priority
report-per-owner = Per owner
report-opened = Opened
report-closed = Closed
report-fr-median = 1st resp. median
report-fr-p90 = 1st resp. p90
report-fr-met = 1st resp. met
report-all-met = All targets met
report-breaches = Breaches
report-chart-label = First-response times and SLA met per week
report-chart-legend = bars: first response median / p90 (business time) · line: targets met %
report-p90 = p90 {$time}
report-median = median {$time}
report-met-pct = {$pct}% met

## Full-text search
nav-search = Search
search-title = Search mail
search-words = Words
search-placeholder = 安装失败, 0x800f081f, KB5034441, a name …
search-from = From
search-to = To (included)
search-submit = Search
search-hint = Every word must occur in a mail, its attachment names or its log analysis; Chinese text matches any part of two or more characters.
search-none = No mail matches.
search-count = { $count ->
    [one] {$count} case
   *[other] {$count} cases
}, best match first
search-in-mail = mail
search-in-analysis = log analysis
search-matches = {$count} matches

## Administration (the team lead)
nav-admin = Admin
admin-users = Accounts
admin-quarantine = Quarantine
admin-knowledge = Knowledge
admin-mailboxes = Mailboxes
admin-display-name = Display name
admin-email = E-mail
admin-role = Role
admin-language = Language
admin-state = State
admin-password = Password
admin-change = Change
admin-desk-default = desk default
admin-disabled = disabled
admin-enabled = active
admin-enable = Enable
admin-disable = Disable
admin-new-password = new password
admin-set = Set
admin-add-account = Add an account
admin-add = Add
admin-quarantine-hint = Mail that could not be filed, with the reason. Replay it after a fix, or discard it with a reason; its bytes are kept either way.
admin-quarantine-empty = Nothing waits in the quarantine.
admin-quarantine-decided = Decided lately
admin-quarantine-entry = Quarantined mail {$id}
admin-reason = Reason
admin-source = Found in
admin-size = Bytes
admin-since = Since
admin-attempts = { $count ->
    [one] {$count} attempt
   *[other] {$count} attempts
}
admin-headers = Headers (as received)
admin-replay = Replay through the pipeline
admin-discard-reason = Reason for discarding
admin-discard = Discard
admin-discarded-by = discarded by {$by}: {$reason}
admin-filed = filed by a replay
admin-edited-by = edited by {$by}
admin-class = Class
admin-problem = Problem
admin-resolution = Resolution
admin-no-mailbox = No IMAP mailbox is watched (the Maildir has no connection state).
admin-mailbox = Mailbox
admin-folder = Folder
admin-last-uid = Last UID
admin-last-error = Last error
error-account-name = an account name is 1 to 64 printable characters
error-no-role = no role {$role}
error-password-short = a password needs at least 10 characters
error-account-exists = an account named {$name} already exists
error-disable-self = you cannot disable your own account
error-no-action = no action {$action}
error-no-quarantine = quarantine entry {$id} does not exist or was already decided
error-discard-reason = say why the mail is discarded
error-no-knowledge = no knowledge entry {$id}
mailbox-state-connecting = connecting
mailbox-state-catching-up = catching up
mailbox-state-idle = idle
mailbox-state-polling = polling
mailbox-state-reconnecting = reconnecting
mailbox-state-needs-login = needs login
mailbox-state-stopped = stopped

## Fixing misfiled mail
regroup-title = Move or split
regroup-move-to = To case
regroup-new-case = a new case
regroup-reason = Reason
regroup-move = Move this mail
regroup-split = Split from here
regroup-merge-into = Merge into
regroup-merge = Merge
regroup-undo = Undo
error-regroup = {$why}
error-regroup-reason = say why: it is kept in both cases' audit trails
error-regroup-target = name the case the mail belongs to, or tick “a new case”
event-messages-moved = mail moved
event-move-undone = move undone

case-close = Close the case
case-reopen = Reopen the case
case-priority-subject = as the subject says
case-set-priority = Set
event-status-set = status set by hand
event-priority-changed = priority changed

## Stored words
role-engineer = engineer
role-lead = lead
status-new = new
status-waiting-on-us = waiting on us
status-waiting-on-customer = waiting on customer
status-resolved = resolved
status-archived = archived
urgency-breached = breached
urgency-at-risk = at risk
urgency-on-track = on track
urgency-paused = paused
urgency-closed = closed
target-first-response = First response
target-update = Update
target-handover = Handover
target-resolution = Resolution
kind-scope = scope
kind-next-steps = next steps
kind-closure = closure
kind-archive = archive
kind-free = free reply
draft-status-pending = pending
draft-status-approved = approved
draft-status-rejected = rejected
draft-status-sent = sent
draft-status-failed = failed
direction-customer = customer
direction-engineer = engineer
direction-auto = automatic
direction-bounce = bounce
stage-first-response = first response
stage-follow-up = follow-up
stage-reassigned = reassigned
stage-escalated = escalated
stage-closed = closed
signal-resolution = resolved
signal-archive = archive
signal-closure = closure
signal-ack = acknowledged
outcome-failure = failure
outcome-success = success
outcome-unknown = unknown
event-case-opened = case opened
event-message-filed = mail filed
event-thread-adopted = thread adopted
event-status-changed = status changed
event-owner-assigned = owner assigned
event-analysis-finished = analysis finished
event-draft-created = draft created
event-draft-updated = draft updated
event-draft-edited = draft edited
event-draft-approved = draft approved
event-draft-rejected = draft rejected
event-draft-withdrawn = draft withdrawn
event-draft-sent = reply sent
event-draft-send-failed = send failed
event-draft-send-retry = send retried
event-draft-send-interrupted = send interrupted
event-draft-send-uncertain = send uncertain
event-draft-retry = send queued again
event-knowledge-recorded = knowledge recorded
event-knowledge-edited = knowledge edited
event-note-added = note added
event-retention-removed-raw-mail = raw mail removed by retention

## Notifications
notice-heading = { $count ->
    [one] casebot: 1 notice for { $name }
   *[other] casebot: { $count } notices for { $name }
}
notice-more = … and { $count } more
notice-customer-mail = { $case }: the customer wrote
notice-draft-waiting = { $case }: a draft waits for your approval
notice-assigned = { $case } is yours now (given by { $by })
notice-sla-at-risk = { $case }: the { $target } target is at risk, due { $due }
notice-sla-breached = { $case }: the { $target } target is overdue (due { $due })
notice-send-failed = { $case }: a reply could not be sent: { $error }
notice-mailbox-needs-login = mailbox { $mailbox } refuses the desk's login: { $error }
topic-customer-mail = A customer wrote in my case
topic-draft-waiting = A draft of my case waits for approval
topic-assigned = A case was given to me
topic-sla-at-risk = An SLA target of my case is at risk
topic-sla-breached = An SLA target is breached
topic-send-failed = A reply could not be sent
topic-mailbox-needs-login = A mailbox needs a login
notice-state-pending = waiting
notice-state-sending = sending
notice-state-sent = sent
notice-state-failed = failed
admin-notifications = Notifications
nav-notifications = Notifications
notify-title = My notifications
notify-disabled = Notifications are turned off for this desk ([notify] enabled = false).
notify-no-channel = No notification channel is configured.
notify-no-address = Your account has no mail address, so nothing reaches you by mail.
notify-topic = What
notify-channel = Channel
notify-channel-email = E-mail
notify-hint = Ticked: you are told. Notices of a short while go out together; outside business hours they wait for the desk to open.
notify-recent = Lately
notify-none-yet = Nothing was sent yet.
notify-person = To
notify-case = Case
notify-when = When
notify-attempts = Attempts
