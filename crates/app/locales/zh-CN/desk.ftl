# 网页工作台的简体中文文本。每条消息在 en/desk.ftl 中都有对应的一条；
# 单元测试保证两份目录与代码一致。

## 格式
format-datetime = %Y年%-m月%-d日 %H:%M
duration-hours = {$hours}小时
duration-hours-minutes = {$hours}小时{$minutes}分
bytes = {$count} 字节

## 导航
nav-cases = 案例
nav-mine = 我的
nav-board = SLA 看板
nav-report = 报表
nav-log-out = 退出

## 登录
login-title = 登录
login-heading = 登录工作台
login-name = 用户名
login-password = 密码
login-submit = 登录
login-wrong = 用户名或密码错误
login-name-locked = 该用户名登录失败次数过多：请等待五分钟
login-client-limited = 该地址登录失败次数过多：请等待五分钟
login-busy = 工作台繁忙：请稍后再试

## 错误
error-title = 错误 {$status}
error-back = 返回案例列表
error-log-in-first = 请先登录
error-internal = 工作台无法处理该请求；错误已记入服务器日志
error-no-page = 没有这个页面
error-csrf = 表单的 CSRF 令牌缺失或错误：请刷新页面
error-cross-site = 已拒绝跨站请求
error-lead-only = 此页面仅供组长使用
error-login-form-expired = 登录表单已过期或来自其他站点：请重新打开登录页面
error-no-case = 没有案例 {$key}
error-no-mail = 案例 {$key} 中没有邮件 {$mail}
error-no-attachment = 邮件 {$mail} 中没有附件 {$part}
error-raw-removed = 该邮件的原始内容已于 {$at} 按保留策略删除；其正文仍在案例页面上
error-not-text = {$name} 不是文本文件：请下载查看
error-no-draft = 没有草稿 {$id}
error-draft-status = 草稿 {$id} 的状态是 {$status}，而不是 {$expected}
error-draft-stale = 草稿 {$id} 在您打开后已被修改（版本 {$seen} → {$current}）：请重新打开
error-draft-unfit = {$problems}
error-draft-refused = {$why}
error-reply-empty = 回复内容为空：如不需要，请驳回该草稿
error-reject-reason = 请说明驳回草稿的原因
error-name-owner = 请指定负责人
error-no-account = 没有名为 {$name} 的工作台账户
error-no-kind = 没有回复类型 {$kind}
error-no-language = 工作台不支持语言 {$language}
error-note-empty = 备注为空
error-note-too-long = 备注有 {$bytes} 字节；一条备注最多 {$max} 字节
error-not-a-date = {$text} 不是形如 2026-11-23 的日期
error-period = 时间段必须从前往后，且最长三年

## 案例列表
cases-title = 案例
cases-search = 搜索
cases-priority = 优先级
cases-customer = 客户
cases-status = 状态
cases-any = 全部
cases-mine = 我的案例
cases-waiting = 待我方处理
cases-filter = 筛选
cases-count = 共 {$count} 个案例
cases-page-of = 第 {$page} / {$pages} 页
cases-draft-link = 草稿 {$id}
pager-newer = ← 较新
pager-older = 较早 →

## 表格列
col-case = 案例
col-priority = 优先级
col-customer = 客户
col-title = 标题
col-status = 状态
col-owner = 负责人
col-sla = SLA
col-next-due = 下一截止
col-mails = 邮件数
col-last-mail = 最近邮件
col-draft = 草稿
col-state = 状态
col-target = 目标
col-left = 剩余
col-due = 截止时间

## 案例页面
case-facts = 优先级 {$priority} · 客户 {$customer} · {$status} · {$mails} 封邮件
case-thread = 邮件往来
case-sla = SLA
case-sla-nothing = 暂无可计时的内容（只有系统邮件）。
case-owner = 负责人：
case-nobody = 无
case-assign-to = 分配给
case-assign = 分配
case-drafts = 草稿
case-no-draft = 没有草稿。
case-write-reply = 撰写回复
case-free-text = 自由撰写
case-from-template = 使用“{$kind}”模板
case-start = 开始
case-replaces-pending = 新回复会替换该案例待审批的草稿，原草稿保留在审计记录中。
case-analysis = 日志分析
case-similar = 相似的已解决案例
case-none-yet = 暂无。
case-events = 事件
case-events-newest = 显示最新的 {$shown} 条，共 {$total} 条事件。
case-audit-trail = 审计记录
thread-range = 第 {$first}–{$last} 封，共 {$total} 封邮件
thread-first = 最早
thread-older = 较早
thread-newer = 较新
thread-newest = 最新
notes-title = 内部备注
notes-hint = 仅供工作台内部使用：不会发送，也不会进入任何草稿。
notes-internal = 内部
notes-placeholder = 给同事的备注
notes-add = 添加备注

## 邮件
mail-sent-at = （发件时区 {$offset}）
mail-raw = 原始 .eml
mail-quoted = 引用的历史邮件
mail-signature = 签名
mail-attachments = 附件：
mail-unnamed = （未命名）
mail-view = 查看
mail-links = 链接：
bounce-earlier-mail = 之前的一封邮件
bounce-no-reason = 未说明原因
bounce-text = 回复“{$subject}”（收件人 {$to}）被退回：{$reason}

## 日志分析
analysis-none = 尚未分析任何日志。
analysis-outcome = 结论：
analysis-decisive = 关键日志行
analysis-codes = 错误代码：
analysis-kbs = KB：
analysis-package = 程序包：
analysis-component = 组件：

## SLA 目标
target-met = 已于 {$at} 达成
target-met-late = 已于 {$at} 达成（超时）
target-not-needed = 无需
target-left = 剩余 {$left}
target-due = 截止 {$at}
target-paused = 已暂停

## 草稿编辑器
draft-title = 草稿 {$id}
editor-case = 案例
editor-revision = 版本 {$revision}
editor-language = 语言 {$language}
editor-approved = 已由 {$by} 批准，正在发送（Message-ID {$message_id}）。
editor-saved = 已保存为版本 {$revision}。
editor-rejected = 已驳回。
editor-not-approved = 未批准。正文已保存；请修改以下问题后再次批准：
editor-only-warnings = 只有警告：勾选“忽略警告并批准”即可按原样发送。
editor-last-error = 上次发送失败：
editor-to = 收件人：
editor-cc = 抄送：
editor-subject = 主题：
editor-in-reply-to = 回复的邮件
editor-save = 保存
editor-approve = 批准并发送
editor-accept-warnings = 忽略警告并批准（缺少称呼或签名；会被记录）
editor-check-hint = 发送前会检查正文：残留的模板语法或未填写的占位符（如 <KB>）会导致无法批准。
editor-snippets = 文本模块
editor-snippets-hint = 在正文中输入 ::名称 再加空格，或在光标处插入。
editor-insert = 插入
editor-snippet-unusable = 不适用于此草稿
editor-reject-reason = 驳回原因
editor-reject = 驳回
editor-approved-by = 由 {$by} 于 {$at} 批准
editor-sent-at = 已于 {$at} 发送
editor-rejected-by = 由 {$by} 驳回：{$reason}
problem-at = 第 {$line} 行第 {$column} 列：{$level}：{$what}
problem-in-subject = 主题：{$level}：{$what}
flaw-empty-subject = 主题为空
flaw-syntax-in-subject = 主题中残留模板语法 {"{{"}
flaw-empty-text = 正文为空
flaw-template-syntax = 正文中残留模板语法 {$detail}
flaw-fill-in = 占位符 {$detail} 尚未填写：请替换为实际内容
flaw-no-greeting = 正文没有以称呼开头
flaw-no-signature = 缺少签名：最后几行没有出现 {$detail}
level-error = 错误
level-warning = 警告

## 以文本查看的附件
file-download = 下载
file-decisive-marked = 已标出 {$count} 行关键日志
file-cut = 只显示前 {$mib} MiB。

## SLA 看板
board-title = SLA 看板
board-title-mine = 我的 SLA 看板
board-mine-hint = 您负责的案例；组长的看板显示所有未结案例。
board-as-of = 未结案例，截至
board-refresh = 剩余时间按工作时间计算。每 {$secs} 秒刷新。
board-by-priority = 按优先级
board-by-owner = 按负责人
board-cases = 案例（最紧急的在前）
board-more = ……另有 {$count} 个不太紧急的未结案例。
board-nobody = （无人负责）

## 周期报表
report-heading = 工作台表现
report-from = 从
report-to = 到（含）
report-show = 显示
report-csv = 导出 CSV
report-total = 合计
report-all = 全部
report-per-week = 按周
report-week-of = 周起始日
report-per-priority = 按优先级
report-per-owner = 按负责人
report-opened = 新建
report-closed = 结案
report-fr-median = 首次响应中位数
report-fr-p90 = 首次响应 p90
report-fr-met = 首次响应达标
report-all-met = 全部目标达标
report-breaches = 超时
report-chart-label = 每周首次响应时间与 SLA 达标率
report-chart-legend = 柱：首次响应中位数 / p90（工作时间）· 线：目标达标率 %
report-p90 = p90 {$time}
report-median = 中位数 {$time}
report-met-pct = 达标 {$pct}%

## 全文搜索
nav-search = 搜索
search-title = 搜索邮件
search-words = 关键词
search-placeholder = 安装失败、0x800f081f、KB5034441、姓名……
search-from = 从
search-to = 到（含）
search-submit = 搜索
search-hint = 每个关键词都必须出现在同一封邮件、其附件名或日志分析中；中文可匹配任意两个及以上连续的字。
search-none = 没有匹配的邮件。
search-count = 共 {$count} 个案例，最匹配的在前
search-in-mail = 邮件
search-in-analysis = 日志分析
search-matches = {$count} 处匹配

## 存储的词
role-engineer = 工程师
role-lead = 组长
status-new = 新建
status-waiting-on-us = 待我方处理
status-waiting-on-customer = 待客户回复
status-resolved = 已解决
status-archived = 已归档
urgency-breached = 已超时
urgency-at-risk = 有风险
urgency-on-track = 正常
urgency-paused = 已暂停
urgency-closed = 已关闭
target-first-response = 首次响应
target-update = 进展更新
target-handover = 交接
target-resolution = 解决
kind-scope = 问题范围
kind-next-steps = 后续步骤
kind-closure = 结案
kind-archive = 暂时归档
kind-free = 自由回复
draft-status-pending = 待审批
draft-status-approved = 已批准
draft-status-rejected = 已驳回
draft-status-sent = 已发送
draft-status-failed = 发送失败
direction-customer = 客户
direction-engineer = 工程师
direction-auto = 自动邮件
direction-bounce = 退信
stage-first-response = 初次响应
stage-follow-up = 跟进
stage-reassigned = 转派
stage-escalated = 升级
stage-closed = 结案
signal-resolution = 已解决
signal-archive = 归档
signal-closure = 结案
signal-ack = 已确认
outcome-failure = 失败
outcome-success = 成功
outcome-unknown = 未知
event-case-opened = 新建案例
event-message-filed = 邮件归档到案例
event-thread-adopted = 接管邮件线程
event-status-changed = 状态变更
event-owner-assigned = 分配负责人
event-analysis-finished = 分析完成
event-draft-created = 生成草稿
event-draft-updated = 更新草稿
event-draft-edited = 编辑草稿
event-draft-approved = 批准草稿
event-draft-rejected = 驳回草稿
event-draft-withdrawn = 撤回草稿
event-draft-sent = 回复已发送
event-draft-send-failed = 发送失败
event-draft-send-retry = 重试发送
event-draft-send-interrupted = 发送中断
event-draft-send-uncertain = 发送结果不确定
event-draft-retry = 重新排队发送
event-knowledge-recorded = 记录知识
event-knowledge-edited = 编辑知识
event-note-added = 添加备注
event-retention-removed-raw-mail = 按保留策略删除原始邮件
