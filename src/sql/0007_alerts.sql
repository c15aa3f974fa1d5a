-- 0007_alerts.sql - alerts: the current state of each alert (a rule and one
-- of its groups), the history of their state changes, silences, and the
-- queue that groups their notifications per endpoint and rule.
--
-- The rules engine runs in the daemon (eval.c); its changes reach the
-- database through lp_alerts_apply, once per pipeline batch and in the
-- batch's transaction (alerts.c), so an alert's state, its history, its
-- notifications and the pipeline cursor move together.  Notifications are
-- ordinary webhook messages and deliveries: the delivery engine signs,
-- sends and retries them like any other.
--
-- Grouping, per endpoint and rule, as Alertmanager's group_wait and
-- group_interval: an endpoint without them (both 0) gets the alerts of
-- one rule queued by one call as one message at once; otherwise they wait
-- in alert_notifications (the latest state of each alert) until their
-- group is due, and lp_alerts_flush (every tick) sends them.

-- The current state of each alert.  An alert going back to inactive from
-- pending is deleted; a resolved one stays (the API shows it, a restart
-- restores nothing from it) until lp_alerts_prune.  "window" is quoted:
-- WINDOW is a reserved word.
create table alert_instances (
	workspace_id uuid not null references workspaces on delete cascade,
	rule text not null,
	fingerprint text not null check (fingerprint ~ '^[0-9a-f]{16}$'),
	labels jsonb not null default '{}'
		check (jsonb_typeof(labels) = 'object'),
	annotations jsonb not null default '{}'
		check (jsonb_typeof(annotations) = 'object'),
	state text not null check (state in ('pending', 'firing', 'resolved')),
	value text null,
	threshold text null,
	"window" text null,
	severity text not null default 'warning',
	active_at timestamptz not null,
	fired_at timestamptz null,
	resolved_at timestamptz null,
	notified_at timestamptz null,
	notifications int not null default 0,
	updated_at timestamptz not null default now(),
	primary key (workspace_id, rule, fingerprint)
);
-- Retention walks the resolved ones by age.
create index alert_instances_resolved_idx on alert_instances (resolved_at)
	where state = 'resolved';

-- One row per state change, in the order the engine made them.  notified:
-- a notification was queued for at least one endpoint; silenced_by: the
-- silence that suppressed it (no reference: the history outlives the
-- silence).
create table alert_history (
	workspace_id uuid not null references workspaces on delete cascade,
	id bigint generated always as identity,
	rule text not null,
	fingerprint text not null,
	labels jsonb not null default '{}',
	annotations jsonb not null default '{}',
	from_state text not null
		check (from_state in ('inactive', 'pending', 'firing',
				      'resolved')),
	state text not null
		check (state in ('inactive', 'pending', 'firing', 'resolved')),
	value text null,
	threshold text null,
	at timestamptz not null,
	notified boolean not null default false,
	repeat boolean not null default false,
	silenced_by uuid null,
	primary key (workspace_id, id)
);
create index alert_history_at_idx
	on alert_history (workspace_id, at desc, id desc);
-- Retention deletes across workspaces, oldest first.
create index alert_history_prune_idx on alert_history (at);

-- Silences, with Alertmanager's matchers: [{"name", "value", "isRegex",
-- "isEqual"}, ...], every one must match.  A missing label matches as the
-- empty string, a regex is anchored at both ends (^(?:re)$).  Active at t
-- when starts_at <= t < ends_at; expiring one sets ends_at to now, and
-- starts_at too if it had not started.
create table alert_silences (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	matchers jsonb not null
		check (jsonb_typeof(matchers) = 'array'
		       and jsonb_array_length(matchers) >= 1),
	starts_at timestamptz not null,
	ends_at timestamptz not null,
	created_by text not null,
	comment text not null default '',
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id),
	-- Equal once a silence that had not started is expired: it then
	-- never was active (starts_at <= t < ends_at holds for no t).
	check (ends_at >= starts_at)
);

-- Grouping settings of an endpoint (API and configuration: groupWait and
-- groupInterval); 0 and 0: every call's alerts go out at once.
alter table webhook_endpoints
	add column group_wait_ms int not null default 0
		check (group_wait_ms >= 0),
	add column group_interval_ms int not null default 0
		check (group_interval_ms >= 0);

-- The notification groups of grouping endpoints: one per endpoint and
-- rule.  due_at: when the queued notifications go out (null: none
-- queued); last_sent_at: the group's last message, on the clock of
-- lp_alerts_flush.  A group lives while its rule has firing alerts in the
-- workspace: a group that no longer has any (and nothing queued) is
-- deleted, so the next firing one waits group_wait again, as a new
-- Alertmanager aggregation group does.
create table alert_groups (
	workspace_id uuid not null,
	endpoint_id uuid not null,
	rule text not null,
	due_at timestamptz null,
	last_sent_at timestamptz null,
	created_at timestamptz not null default now(),
	primary key (workspace_id, endpoint_id, rule),
	foreign key (workspace_id, endpoint_id) references webhook_endpoints
		on delete cascade
);
create index alert_groups_due_idx on alert_groups (due_at)
	where due_at is not null;

-- The queued notifications of a group: the latest notified state of each
-- of its alerts, as messages show it.  Its row type is also how
-- lp_alerts_send receives the alerts to send (the ungrouped ones never
-- touch the table).
create table alert_notifications (
	workspace_id uuid not null,
	endpoint_id uuid not null,
	rule text not null,
	fingerprint text not null,
	labels jsonb not null,
	annotations jsonb not null,
	severity text not null,
	status text not null check (status in ('firing', 'resolved')),
	value text null,
	threshold text null,
	"window" text null,
	starts_at timestamptz not null,
	ends_at timestamptz null,
	repeat boolean not null default false,
	queued_at timestamptz not null default now(),
	primary key (workspace_id, endpoint_id, rule, fingerprint),
	foreign key (workspace_id, endpoint_id, rule) references alert_groups
		on delete cascade
);

-- A time as messages show it: RFC 3339 in UTC, microseconds, "Z".
create function lp_alert_time(ts timestamptz)
returns text
language sql
immutable
as $$
	select to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- A JSON object of strings as compact text, keys sorted by name (what
-- Alertmanager's Go maps marshal to).
create function lp_alert_json_object(o jsonb)
returns text
language sql
immutable
as $$
	select '{' || coalesce(string_agg(to_json(e.key)::text || ':'
					  || e.value::text, ',' order by e.key),
			       '') || '}'
	from jsonb_each(coalesce(o, '{}')) e
$$;

-- The pairs every object of the array has, with the same value, as
-- lp_alert_json_object text (Alertmanager's commonLabels and
-- commonAnnotations).
create function lp_alert_json_common(objs jsonb)
returns text
language sql
immutable
as $$
	select '{' || coalesce(string_agg(to_json(c.key)::text || ':'
					  || c.value::text, ',' order by c.key),
			       '') || '}'
	from (select e.key, e.value
	      from jsonb_array_elements(objs) o
	      cross join lateral jsonb_each(o) e
	      group by e.key, e.value
	      having count(*) = jsonb_array_length(objs)) c
$$;

-- Whether the matchers match the labels.  The regexes must compile: see
-- lp_alert_silence_valid, asked first.
create function lp_alert_silence_matches(matchers jsonb, labels jsonb)
returns boolean
language sql
immutable
as $$
	select coalesce(bool_and(
		case when coalesce((m->>'isRegex')::boolean, false)
		     then coalesce(labels->>(m->>'name'), '')
			  ~ ('^(?:' || coalesce(m->>'value', '') || ')$')
		     else coalesce(labels->>(m->>'name'), '')
			  = coalesce(m->>'value', '') end
		= coalesce((m->>'isEqual')::boolean, true)), false)
	from jsonb_array_elements(matchers) m
$$;

-- Whether every regex of the matchers compiles.  The API checks them when
-- a silence is made; this keeps one that slipped through (written by hand,
-- or valid for Go's RE2 and not for PostgreSQL) from failing a whole
-- batch: such a silence matches nothing.  Asked once per active silence
-- and batch, and only silences with a regex enter the exception block (a
-- subtransaction), so the cost is small.
create function lp_alert_silence_valid(matchers jsonb)
returns boolean
language plpgsql
immutable
as $$
declare
	m jsonb;
begin
	if not exists (select 1 from jsonb_array_elements(matchers) x
		       where coalesce((x->>'isRegex')::boolean, false)) then
		return true;
	end if;
	begin
		for m in select x from jsonb_array_elements(matchers) x
			 where coalesce((x->>'isRegex')::boolean, false)
		loop
			perform '' ~ ('^(?:' || coalesce(m->>'value', '')
				      || ')$');
		end loop;
		return true;
	exception when others then
		return false;
	end;
end;
$$;

-- Sends alerts: one message per endpoint and rule (several if the alerts
-- would not fit in one payload, each under 32 kB of alerts), to that
-- endpoint only, in its format.  The type is alert.firing when any alert
-- of the message is firing, else alert.resolved.  Returns the deliveries
-- queued.  A message still too large for webhook_messages (a single huge
-- alert) is dropped with a warning rather than failing the batch.
create function lp_alerts_send(p_notes alert_notifications[])
returns int
language plpgsql
as $$
declare
	r record;
	mid text;
	n int := 0;
begin
	if coalesce(cardinality(p_notes), 0) = 0 then
		return 0;
	end if;
	for r in
		with a as (
			select x.*, e.format, e.name as receiver,
			       e.status as ep_status, w.slug,
			       case when e.format = 'alertmanager' then
				'{"status":' || to_json(x.status)::text
				|| ',"labels":'
				|| lp_alert_json_object(x.labels)
				|| ',"annotations":'
				|| lp_alert_json_object(x.annotations)
				|| ',"startsAt":'
				|| to_json(lp_alert_time(x.starts_at))::text
				|| ',"endsAt":' || to_json(case
					when x.status = 'firing'
					then '0001-01-01T00:00:00Z'
					else lp_alert_time(x.ends_at) end)::text
				|| ',"generatorURL":"","fingerprint":'
				|| to_json(x.fingerprint)::text || '}'
			       end as am,
			       case when e.format <> 'alertmanager' then
				jsonb_build_object(
					'status', x.status,
					'fingerprint', x.fingerprint,
					'labels', x.labels,
					'annotations', x.annotations,
					'value', x.value,
					'threshold', x.threshold,
					'window', x."window",
					'startsAt', lp_alert_time(x.starts_at),
					'endsAt', lp_alert_time(x.ends_at),
					'repeat', x.repeat)
			       end as std
			from unnest(p_notes) x
			join webhook_endpoints e
			  on e.workspace_id = x.workspace_id
			 and e.id = x.endpoint_id
			join workspaces w on w.id = x.workspace_id
		), sized as (
			select a.*,
			       coalesce(octet_length(a.am),
					octet_length(a.std::text)) as size,
			       row_number() over (partition by a.workspace_id,
					a.endpoint_id, a.rule
					order by a.starts_at, a.fingerprint)
				   as pos
			from a
		), chunked as (
			-- Chunk k holds the alerts that start within its
			-- 32 kB of the group's running size.
			select s.*,
			       (sum(s.size) over (partition by s.workspace_id,
					s.endpoint_id, s.rule order by s.pos)
				- s.size) / 32768 as chunk
			from sized s
		), g as (
			select c.workspace_id, c.endpoint_id, c.rule, c.chunk,
			       min(c.format) as format,
			       min(c.receiver) as receiver,
			       min(c.ep_status) as ep_status,
			       min(c.slug) as slug,
			       case when bool_or(c.status = 'firing')
				    then 'firing' else 'resolved' end as status,
			       (array_agg(c.severity order by c.pos))[1]
				   as severity,
			       jsonb_agg(c.std order by c.pos) as std_alerts,
			       string_agg(c.am, ',' order by c.pos)
				   as am_alerts,
			       jsonb_agg(c.labels order by c.pos) as all_labels,
			       jsonb_agg(c.annotations order by c.pos)
				   as all_annotations
			from chunked c
			group by c.workspace_id, c.endpoint_id, c.rule, c.chunk
		)
		select g.workspace_id, g.endpoint_id, g.ep_status,
		       'alert.' || g.status as type,
		       case when g.format = 'alertmanager' then
			'{"version":"4","groupKey":'
			|| to_json('{}:{alertname=' || to_json(g.rule)::text
				   || '}')::text
			|| ',"truncatedAlerts":0,"status":'
			|| to_json(g.status)::text
			|| ',"receiver":' || to_json(g.receiver)::text
			|| ',"groupLabels":{"alertname":'
			|| to_json(g.rule)::text || '}'
			|| ',"commonLabels":'
			|| lp_alert_json_common(g.all_labels)
			|| ',"commonAnnotations":'
			|| lp_alert_json_common(g.all_annotations)
			|| ',"externalURL":"","alerts":[' || g.am_alerts
			|| ']}'
		       else lp_webhook_body('alert.' || g.status, now(),
				jsonb_build_object(
					'rule', g.rule,
					'workspace', g.slug,
					'status', g.status,
					'severity', g.severity,
					'alerts', g.std_alerts))
		       end as payload
		from g
		order by g.workspace_id, g.endpoint_id, g.rule, g.chunk
	loop
		if octet_length(r.payload) > 65536 then
			raise warning 'alert message of % bytes to endpoint % '
				'dropped: too large', octet_length(r.payload),
				r.endpoint_id;
			continue;
		end if;
		mid := lp_webhook_message_id();
		insert into webhook_messages (workspace_id, id, event_type,
					      payload)
		values (r.workspace_id, mid, r.type, r.payload);
		-- As lp_webhook_enqueue: held while the endpoint is not
		-- active.
		insert into webhook_deliveries (workspace_id, endpoint_id,
						message_id, state)
		values (r.workspace_id, r.endpoint_id, mid,
			case when r.ep_status = 'WEBHOOK_STATUS_ACTIVE'
			     then 'pending' else 'held' end);
		n := n + 1;
	end loop;
	return n;
end;
$$;

-- Sends the groups due at p_now (default now; a parameter so that tests
-- can move the clock): each as one message with the latest state of
-- every alert queued in it, which leaves the queue.  A group whose rule
-- has no firing alert left in the workspace is deleted (its next alert
-- waits group_wait); the others are due again, for what gets queued
-- next, group_interval after p_now.  Groups another transaction is
-- flushing are skipped.  Returns the deliveries queued.
create function lp_alerts_flush(p_now timestamptz default now())
returns int
language plpgsql
as $$
declare
	v_notes alert_notifications[];
begin
	with g as (
		select g.workspace_id, g.endpoint_id, g.rule
		from alert_groups g
		where g.due_at <= p_now
		order by g.workspace_id, g.endpoint_id, g.rule
		for update skip locked
	), sent as (
		update alert_groups a
		set due_at = null, last_sent_at = p_now
		from g
		where a.workspace_id = g.workspace_id
		  and a.endpoint_id = g.endpoint_id and a.rule = g.rule
	), q as (
		delete from alert_notifications n
		using g
		where n.workspace_id = g.workspace_id
		  and n.endpoint_id = g.endpoint_id and n.rule = g.rule
		returning n
	)
	select array_agg(q.n) into v_notes from q;

	if v_notes is null then
		return 0;
	end if;

	delete from alert_groups a
	where (a.workspace_id, a.endpoint_id, a.rule) in (
		select distinct x.workspace_id, x.endpoint_id, x.rule
		from unnest(v_notes) x)
	  and a.due_at is null
	  and not exists (select 1 from alert_instances i
			  where i.workspace_id = a.workspace_id
			    and i.rule = a.rule and i.state = 'firing');

	return lp_alerts_send(v_notes);
end;
$$;

-- Applies one batch's alert changes (a JSON array, oldest first; the
-- shape is in alerts.c): keeps alert_instances, appends alert_history,
-- and notifies the endpoints each change names (by name or id; unknown
-- ones are ignored) unless an active silence of the workspace matches its
-- labels.  Changes of an unknown workspace are ignored.  Everything is
-- set-wise: a few statements per call whatever the number of changes.
-- Returns the deliveries queued (with the groups that fell due, which it
-- flushes too).
create function lp_alerts_apply(p_changes jsonb)
returns int
language plpgsql
as $$
declare
	v_now alert_notifications[];
	v_queue alert_notifications[];
begin
	if p_changes is null or jsonb_array_length(p_changes) = 0 then
		return 0;
	end if;

	with c as materialized (
		select w.id as ws, x.rule, x.fingerprint,
		       coalesce(x.labels, '{}') as labels,
		       coalesce(x.annotations, '{}') as annotations,
		       x.severity,
		       coalesce(x."from", 'inactive') as from_state, x.state,
		       x.value, x.threshold, x."window",
		       coalesce(x."activeAt", x."at", now()) as active_at,
		       x."firedAt" as fired_at, x."resolvedAt" as resolved_at,
		       coalesce(x."at", now()) as at,
		       coalesce(x.notify, false) as notify,
		       coalesce(x.repeat, false) as repeat,
		       coalesce(x.notifications, 0) as notifications,
		       x."notifiedAt" as notified_at,
		       coalesce(x.endpoints, '[]') as endpoints,
		       x.ordinality as n
		from rows from (jsonb_to_recordset(p_changes) as (
			workspace text, rule text, fingerprint text,
			labels jsonb, annotations jsonb, severity text,
			"from" text, state text, value text, threshold text,
			"window" text, "activeAt" timestamptz,
			"firedAt" timestamptz, "resolvedAt" timestamptz,
			"at" timestamptz, notify boolean, repeat boolean,
			notifications int, "notifiedAt" timestamptz,
			endpoints jsonb)) with ordinality as x
		join workspaces w on w.slug = x.workspace
	), latest as (
		-- An alert may change more than once in a batch: its row
		-- takes the last change.
		select distinct on (c.ws, c.rule, c.fingerprint) c.*
		from c
		order by c.ws, c.rule, c.fingerprint, c.n desc
	), gone as (
		delete from alert_instances i
		using latest l
		where l.state = 'inactive'
		  and i.workspace_id = l.ws and i.rule = l.rule
		  and i.fingerprint = l.fingerprint
	), kept as (
		insert into alert_instances as i (workspace_id, rule,
			fingerprint, labels, annotations, state, value,
			threshold, "window", severity, active_at, fired_at,
			resolved_at, notified_at, notifications, updated_at)
		select l.ws, l.rule, l.fingerprint, l.labels, l.annotations,
		       l.state, l.value, l.threshold, l."window",
		       -- A change without a severity (an alert of a rule
		       -- that is gone, resolved at start) keeps the stored
		       -- one.
		       coalesce(l.severity, (
				select i2.severity from alert_instances i2
				where i2.workspace_id = l.ws
				  and i2.rule = l.rule
				  and i2.fingerprint = l.fingerprint),
				'warning'),
		       l.active_at, l.fired_at, l.resolved_at, l.notified_at,
		       l.notifications, now()
		from latest l
		where l.state <> 'inactive'
		order by l.ws, l.rule, l.fingerprint
		on conflict (workspace_id, rule, fingerprint) do update
		set labels = excluded.labels,
		    annotations = excluded.annotations,
		    state = excluded.state,
		    value = excluded.value,
		    threshold = excluded.threshold,
		    "window" = excluded."window",
		    severity = excluded.severity,
		    active_at = excluded.active_at,
		    fired_at = excluded.fired_at,
		    resolved_at = excluded.resolved_at,
		    notified_at = excluded.notified_at,
		    notifications = excluded.notifications,
		    updated_at = excluded.updated_at
	), sil as materialized (
		-- The active silences of the workspaces that notify, each
		-- checked once.
		select s.workspace_id, s.id, s.matchers, s.starts_at,
		       lp_alert_silence_valid(s.matchers) as valid
		from alert_silences s
		where s.workspace_id in (select c.ws from c where c.notify)
		  and s.starts_at <= now() and s.ends_at > now()
	), m as (
		select c.*,
		       case when c.notify then (
			select s.id from sil s
			where s.workspace_id = c.ws
			  -- case: a regex is only run once known to compile
			  and case when s.valid
				   then lp_alert_silence_matches(s.matchers,
								 c.labels)
				   else false end
			order by s.starts_at, s.id
			limit 1) end as silenced_by
		from c
	), r as materialized (
		-- The endpoints of each list of names (the changes of a rule
		-- share theirs, so this is done once per rule, not per
		-- change): those of the workspace named by name or id, once
		-- each.
		select l.ws, l.endpoints, e.id as endpoint_id,
		       e.group_wait_ms = 0 and e.group_interval_ms = 0
			   as at_once
		from (select distinct m.ws, m.endpoints from m
		      where m.notify and m.silenced_by is null) l
		join webhook_endpoints e on e.workspace_id = l.ws
		where exists (select 1
			      from jsonb_array_elements_text(l.endpoints) x
			      where x = e.name or lower(x) = e.id::text)
	), t as materialized (
		-- Who gets each notified change.
		select m.*, r.endpoint_id, r.at_once
		from m
		join r on r.ws = m.ws and r.endpoints = m.endpoints
		where m.notify and m.silenced_by is null
		  and m.state in ('firing', 'resolved')
	), hist as (
		insert into alert_history (workspace_id, rule, fingerprint,
			labels, annotations, from_state, state, value,
			threshold, at, notified, repeat, silenced_by)
		select m.ws, m.rule, m.fingerprint, m.labels, m.annotations,
		       m.from_state, m.state, m.value, m.threshold, m.at,
		       coalesce(m.n in (select t.n from t), false), m.repeat,
		       m.silenced_by
		from m
		order by m.n
	), notes as (
		-- The latest notified state of each alert per endpoint.
		select distinct on (t.ws, t.endpoint_id, t.rule, t.fingerprint)
		       t.at_once,
		       row(t.ws, t.endpoint_id, t.rule, t.fingerprint,
			   t.labels, t.annotations,
			   coalesce(t.severity, 'warning'), t.state,
			   t.value, t.threshold, t."window",
			   coalesce(t.fired_at, t.active_at),
			   case when t.state = 'resolved'
				then coalesce(t.resolved_at, t.at) end,
			   t.repeat, now())::alert_notifications as note
		from t
		order by t.ws, t.endpoint_id, t.rule, t.fingerprint, t.n desc
	)
	select array_agg(notes.note) filter (where notes.at_once),
	       array_agg(notes.note) filter (where not notes.at_once)
	into v_now, v_queue
	from notes;

	if v_queue is not null then
		-- The group first (flushes lock it first too), then its
		-- queue.  A new group is due after group_wait; one already
		-- waiting keeps its time; an idle one is due group_interval
		-- after its last message (now if that has passed).
		insert into alert_groups as g (workspace_id, endpoint_id,
					       rule, due_at)
		select distinct x.workspace_id, x.endpoint_id, x.rule,
		       now() + e.group_wait_ms * interval '1 ms'
		from unnest(v_queue) x
		join webhook_endpoints e on e.workspace_id = x.workspace_id
					and e.id = x.endpoint_id
		order by 1, 2, 3
		on conflict (workspace_id, endpoint_id, rule) do update
		set due_at = case
			when g.due_at is not null then g.due_at
			when g.last_sent_at is null then excluded.due_at
			else greatest(now(), g.last_sent_at
				 + (select e.group_interval_ms
				    from webhook_endpoints e
				    where e.workspace_id = g.workspace_id
				      and e.id = g.endpoint_id)
				   * interval '1 ms') end;

		insert into alert_notifications as a
		select x.*
		from unnest(v_queue) x
		order by x.workspace_id, x.endpoint_id, x.rule, x.fingerprint
		on conflict (workspace_id, endpoint_id, rule, fingerprint)
		do update
		set labels = excluded.labels,
		    annotations = excluded.annotations,
		    severity = excluded.severity,
		    status = excluded.status,
		    value = excluded.value,
		    threshold = excluded.threshold,
		    "window" = excluded."window",
		    starts_at = excluded.starts_at,
		    ends_at = excluded.ends_at,
		    repeat = excluded.repeat,
		    queued_at = excluded.queued_at;
	end if;

	-- Groups with nothing queued whose rule has no firing alert left
	-- (it resolved without a notification) end here.
	delete from alert_groups a
	where a.due_at is null
	  and (a.workspace_id, a.rule) in (
		select w.id, x.rule
		from jsonb_to_recordset(p_changes) as x(workspace text,
							 rule text)
		join workspaces w on w.slug = x.workspace)
	  and not exists (select 1 from alert_instances i
			  where i.workspace_id = a.workspace_id
			    and i.rule = a.rule and i.state = 'firing');

	return lp_alerts_send(v_now) + lp_alerts_flush(now());
end;
$$;

-- Retention: deletes up to p_limit history rows and up to p_limit
-- resolved alerts older than p_age_ms, and groups idle that long (nothing
-- queued, no message since).  Returns the rows deleted; call again while
-- it returns p_limit or more.  Silences are kept (the API shows expired
-- ones; they are few).
create function lp_alerts_prune(p_age_ms bigint, p_limit int)
returns int
language plpgsql
as $$
declare
	n int;
	total int := 0;
	horizon timestamptz := now() - p_age_ms * interval '1 ms';
begin
	delete from alert_history h
	where (h.workspace_id, h.id) in (
		select h2.workspace_id, h2.id from alert_history h2
		where h2.at < horizon
		order by h2.at limit p_limit);
	get diagnostics n = row_count;
	total := total + n;
	delete from alert_instances i
	where (i.workspace_id, i.rule, i.fingerprint) in (
		select i2.workspace_id, i2.rule, i2.fingerprint
		from alert_instances i2
		where i2.state = 'resolved' and i2.resolved_at < horizon
		order by i2.resolved_at limit p_limit);
	get diagnostics n = row_count;
	total := total + n;
	delete from alert_groups g
	where (g.workspace_id, g.endpoint_id, g.rule) in (
		select g2.workspace_id, g2.endpoint_id, g2.rule
		from alert_groups g2
		where g2.due_at is null
		  and coalesce(g2.last_sent_at, g2.created_at) < horizon
		limit p_limit);
	get diagnostics n = row_count;
	return total + n;
end;
$$;

-- lp_webhook_sync (0005) again, now also taking each definition's
-- "groupWaitMs" and "groupIntervalMs" (integers, default 0).
create or replace function lp_webhook_sync(defs jsonb, p_overlap_ms bigint)
returns table (workspace text, name text, outcome text)
language plpgsql
as $$
#variable_conflict use_column
declare
	d jsonb;
	ws uuid;
	before webhook_endpoints;
	after webhook_endpoints;
	r record;
begin
	for d in select * from jsonb_array_elements(defs) loop
		workspace := d->>'workspace';
		name := d->>'name';
		select w.id into ws from workspaces w where w.slug = workspace;
		if not found then
			outcome := 'unknown workspace';
			return next;
			continue;
		end if;
		select * into before from webhook_endpoints e
		where e.workspace_id = ws and e.name = d->>'name';
		insert into webhook_endpoints as e (workspace_id, name,
			description, endpoint_url, event_types, headers,
			rate_limit_per_second, max_in_flight, payload, format,
			operational, group_wait_ms, group_interval_ms, managed)
		values (ws, d->>'name', d->>'description', d->>'url',
			coalesce(array(select jsonb_array_elements_text(
				d->'eventTypes')), '{scan.created}'),
			coalesce(d->'headers', '{}'),
			(d->>'rateLimitPerSecond')::int,
			coalesce((d->>'maxInFlight')::int, 10),
			coalesce(d->>'payload', 'full'),
			coalesce(d->>'format', 'standard'),
			coalesce((d->>'operational')::boolean, false),
			coalesce((d->>'groupWaitMs')::int, 0),
			coalesce((d->>'groupIntervalMs')::int, 0), true)
		on conflict (workspace_id, name) do update
		set description = excluded.description,
		    endpoint_url = excluded.endpoint_url,
		    event_types = excluded.event_types,
		    headers = excluded.headers,
		    rate_limit_per_second = excluded.rate_limit_per_second,
		    max_in_flight = excluded.max_in_flight,
		    payload = excluded.payload,
		    format = excluded.format,
		    operational = excluded.operational,
		    group_wait_ms = excluded.group_wait_ms,
		    group_interval_ms = excluded.group_interval_ms,
		    managed = true,
		    updated_at = case when (e.description, e.endpoint_url,
			e.event_types, e.headers, e.rate_limit_per_second,
			e.max_in_flight, e.payload, e.format, e.operational,
			e.group_wait_ms, e.group_interval_ms,
			e.managed) is distinct from (excluded.description,
			excluded.endpoint_url, excluded.event_types,
			excluded.headers, excluded.rate_limit_per_second,
			excluded.max_in_flight, excluded.payload,
			excluded.format, excluded.operational,
			excluded.group_wait_ms, excluded.group_interval_ms,
			true)
			then now() else e.updated_at end
		returning * into after;
		outcome := case when before.id is null then 'created'
			   when after.updated_at <> before.updated_at
			   then 'updated' else 'unchanged' end;
		if not exists (select 1 from webhook_secrets s
			       where s.workspace_id = ws
				 and s.endpoint_id = after.id
				 and s.secret = d->>'secret'
				 and (s.expires_at is null
				      or s.expires_at > now())) then
			update webhook_secrets s
			set expires_at = now() + p_overlap_ms * interval '1 ms'
			where s.workspace_id = ws and s.endpoint_id = after.id
			  and (s.expires_at is null or s.expires_at > now()
				+ p_overlap_ms * interval '1 ms');
			insert into webhook_secrets (workspace_id, endpoint_id,
						     secret)
			values (ws, after.id, d->>'secret');
			if outcome = 'unchanged' then
				outcome := 'updated';
			end if;
		end if;
		if after.status = 'WEBHOOK_STATUS_DISABLED'
		   and after.disabled_reason = 'removed from the configuration'
		then
			perform lp_webhook_enable(ws, after.id);
			outcome := 'updated';
		end if;
		return next;
	end loop;

	for r in
		select e.workspace_id, e.id, w.slug, e.name
		from webhook_endpoints e
		join workspaces w on w.id = e.workspace_id
		where e.managed and e.status <> 'WEBHOOK_STATUS_DISABLED'
		  and not exists (
			select 1 from jsonb_array_elements(defs) x
			where x->>'workspace' = w.slug
			  and x->>'name' = e.name)
	loop
		perform lp_webhook_disable(r.workspace_id, r.id,
					   'removed from the configuration');
		workspace := r.slug;
		name := r.name;
		outcome := 'disabled';
		return next;
	end loop;
end;
$$;
