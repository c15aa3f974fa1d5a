-- 0005_webhooks.sql - webhook endpoints, their secrets, the messages the
-- outbox writes (the exact bytes that get signed), one delivery per message
-- and endpoint with its retry state and lease, and the log of attempts.
--
-- A delivery is 'pending' (due at next_attempt_at), 'delivering' (claimed
-- by leased_by until next_attempt_at: an expired lease makes it due again),
-- 'held' (its endpoint is paused or disabled), 'delivered' or 'dead'
-- (every attempt of the schedule failed).  One index on next_attempt_at
-- over the pending and delivering rows serves both the claim and the
-- takeover of expired leases.

create table webhook_endpoints (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	name text not null check (name <> '' and length(name) <= 200),
	description text null,
	endpoint_url text not null,
	-- Linkbreakers filters: one link, workflow step kinds.
	link_id uuid null,
	triggers text[] not null default '{}',
	source text not null default 'WEBHOOK_SOURCE_LINKBREAKERS'
		check (source in ('WEBHOOK_SOURCE_UNSPECIFIED',
		       'WEBHOOK_SOURCE_LINKBREAKERS', 'WEBHOOK_SOURCE_MAKE',
		       'WEBHOOK_SOURCE_ZAPIER')),
	status text not null default 'WEBHOOK_STATUS_ACTIVE'
		check (status in ('WEBHOOK_STATUS_ACTIVE',
		       'WEBHOOK_STATUS_DISABLED', 'WEBHOOK_STATUS_PAUSED')),
	disabled_reason text null,
	-- linkpulse's own: event types (wildcards such as "alert.*"), tags of
	-- the link, static headers, limits, payload size.
	event_types text[] not null default '{scan.created}',
	tag_ids uuid[] not null default '{}',
	headers jsonb not null default '{}'
		check (jsonb_typeof(headers) = 'object'),
	rate_limit_per_second int null check (rate_limit_per_second > 0),
	max_in_flight int not null default 10
		check (max_in_flight between 1 and 1000),
	payload text not null default 'full'
		check (payload in ('full', 'thin')),
	-- Output format: Standard Webhooks JSON, or (alerts) Alertmanager's.
	format text not null default 'standard'
		check (format in ('standard', 'alertmanager')),
	-- Receives the workspace's operational messages (endpoint.disabled,
	-- message.attempt.exhausted).
	operational boolean not null default false,
	-- Declared in the configuration file: the API does not change it.
	managed boolean not null default false,
	created_by uuid null,
	success_count bigint not null default 0,
	failure_count bigint not null default 0,
	consecutive_failures int not null default 0,
	-- First failure of the current run of failures; auto-disable after
	-- delivery.disable_after.
	failing_since timestamptz null,
	last_delivered_at timestamptz null,
	last_sent_at timestamptz null,
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id),
	unique (workspace_id, name)
);

-- Signing secrets ("whsec_" + base64).  Kept in clear: signing needs them.
-- A rotated-out secret keeps signing until expires_at.
create table webhook_secrets (
	workspace_id uuid not null,
	endpoint_id uuid not null,
	id bigint generated always as identity,
	secret text not null check (secret ~ '^whsec_[A-Za-z0-9+/=]{32,}$'),
	created_at timestamptz not null default now(),
	expires_at timestamptz null,
	primary key (workspace_id, endpoint_id, id),
	foreign key (workspace_id, endpoint_id) references webhook_endpoints
		on delete cascade
);

-- One message per event (or operational happening) and payload shape.
-- payload is exactly the body sent and signed; id is webhook-id.
create table webhook_messages (
	workspace_id uuid not null references workspaces on delete cascade,
	id text not null check (id ~ '^msg_[A-Za-z0-9]{8,64}$'),
	event_type text not null check (event_type ~ '^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*$'),
	-- The scan event it tells of, if any.
	event_id bigint null,
	kind text not null default 'full' check (kind in ('full', 'thin')),
	payload text not null check (octet_length(payload) <= 65536),
	created_at timestamptz not null default now(),
	primary key (workspace_id, id)
);
create index webhook_messages_created_idx on webhook_messages (created_at);

create table webhook_deliveries (
	id bigint generated always as identity primary key,
	workspace_id uuid not null,
	endpoint_id uuid not null,
	message_id text not null,
	state text not null default 'pending'
		check (state in ('pending', 'delivering', 'held', 'delivered',
				 'dead')),
	attempts int not null default 0,
	next_attempt_at timestamptz not null default now(),
	leased_by text null,
	last_status int null,
	last_error text null,
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	delivered_at timestamptz null,
	foreign key (workspace_id, endpoint_id) references webhook_endpoints
		on delete cascade,
	foreign key (workspace_id, message_id) references webhook_messages
		on delete cascade
);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at)
	where state in ('pending', 'delivering');
create index webhook_deliveries_endpoint_idx
	on webhook_deliveries (workspace_id, endpoint_id, created_at);
create index webhook_deliveries_message_idx
	on webhook_deliveries (workspace_id, message_id);
create index webhook_deliveries_done_idx on webhook_deliveries (updated_at)
	where state in ('delivered', 'dead');
-- Deliveries parked by a disabled endpoint or an exhausted schedule: for
-- enable, replay and the queue gauges.  Rows only enter it when they park,
-- so the claim and result writes never maintain it.
create index webhook_deliveries_parked_idx
	on webhook_deliveries (workspace_id, endpoint_id)
	where state in ('held', 'dead');

create table webhook_attempts (
	id bigint generated always as identity primary key,
	workspace_id uuid not null,
	endpoint_id uuid not null,
	delivery_id bigint not null,
	message_id text not null,
	attempt int not null,
	attempted_at timestamptz not null default now(),
	-- HTTP status, or null when no response came (error says why).
	status_code int null,
	latency_ms int not null check (latency_ms >= 0),
	error text null,
	response_snippet text null,
	foreign key (workspace_id, endpoint_id) references webhook_endpoints
		on delete cascade
);
create index webhook_attempts_endpoint_idx
	on webhook_attempts (workspace_id, endpoint_id, id);
create index webhook_attempts_time_idx on webhook_attempts (attempted_at);

-- Wake-ups: one per statement.  linkpulse_deliveries when deliveries become
-- due now; linkpulse_endpoints when an endpoint changes.
create function lp_notify_deliveries() returns trigger
language plpgsql
as $$
begin
	perform pg_notify('linkpulse_deliveries', '');
	return null;
end;
$$;
create trigger webhook_deliveries_notify
	after insert on webhook_deliveries
	for each statement execute function lp_notify_deliveries();

-- Whether an endpoint subscribed to these patterns receives type t:
-- "scan.created", "scan.*", "*".
create function lp_webhook_subscribes(patterns text[], t text)
returns boolean
language sql
immutable
as $$
	select exists (
		select 1 from unnest(patterns) p
		where p = t or p = '*'
		   or (right(p, 2) = '.*'
		       and left(t, length(p) - 1) = left(p, -1)))
$$;

-- A new webhook-id.
create function lp_webhook_message_id() returns text
language sql
volatile
as $$
	select 'msg_' || replace(gen_random_uuid()::text, '-', '')
$$;

-- The body of a message: {"type", "timestamp", "data"} in that order.
create function lp_webhook_body(t text, ts timestamptz, data jsonb)
returns text
language sql
immutable
as $$
	select '{"type":' || to_json(t)::text
	    || ',"timestamp":'
	    || to_json(to_char(ts at time zone 'UTC',
			       'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
	    || ',"data":' || data::text || '}'
$$;

-- Queues one message to the given endpoints (deliveries due now).
-- Returns the message id, or null when endpoint_ids is empty.
create function lp_webhook_enqueue(ws uuid, endpoint_ids uuid[], t text,
				   ts timestamptz, data jsonb,
				   p_kind text default 'full')
returns text
language plpgsql
as $$
declare
	mid text;
begin
	if coalesce(cardinality(endpoint_ids), 0) = 0 then
		return null;
	end if;
	mid := lp_webhook_message_id();
	insert into webhook_messages (workspace_id, id, event_type, kind,
				      payload)
	values (ws, mid, t, p_kind, lp_webhook_body(t, ts, data));
	insert into webhook_deliveries (workspace_id, endpoint_id, message_id,
					state)
	select ws, e.id, mid,
	       case when e.status = 'WEBHOOK_STATUS_ACTIVE' then 'pending'
		    else 'held' end
	from webhook_endpoints e
	where e.workspace_id = ws and e.id = any(endpoint_ids);
	return mid;
end;
$$;

-- Fans a message out to every active endpoint of the workspace subscribed
-- to type t (operational types go to operational endpoints only, except
-- the one the message is about).  Returns the message id or null.
create function lp_webhook_emit(ws uuid, t text, data jsonb,
				about uuid default null)
returns text
language sql
as $$
	select lp_webhook_enqueue(ws, array(
		select e.id from webhook_endpoints e
		where e.workspace_id = ws
		  and e.status = 'WEBHOOK_STATUS_ACTIVE'
		  and e.id is distinct from about
		  and case when t in ('endpoint.disabled',
				      'message.attempt.exhausted')
			   then e.operational
			   else lp_webhook_subscribes(e.event_types, t) end),
		t, now(), data)
$$;

-- Claims up to p_limit due deliveries for p_owner until now + p_lease_ms,
-- skipping the endpoints in p_skip (full locally, or circuit open).  An
-- expired lease is due again: its attempt counted, its owner gone.
-- Returns what a request needs: the payload, the endpoint's URL, headers,
-- limits and every active secret (newest first).
create function lp_delivery_claim(p_owner text, p_limit int, p_lease_ms int,
				  p_skip uuid[] default '{}')
returns table (id bigint, workspace_id uuid, endpoint_id uuid,
	       message_id text, attempt int, event_type text, payload text,
	       endpoint_url text, headers text, max_in_flight int,
	       rate_limit_per_second int, secrets text[])
-- The walk over the due index checks nothing else per row: a delivery
-- whose endpoint is no longer active (its lease expired while the endpoint
-- was being disabled or paused) is locked, then parked as held.
-- plpgsql, not sql: a SQL function's body is planned again in full on
-- every call.  The plan is still made for each call's own limit (a generic
-- plan, blind to it, may sort every due delivery first).
language plpgsql
set plan_cache_mode = force_custom_plan
as $$
#variable_conflict use_column
begin
	return query
	with c as (
		select d.id
		from webhook_deliveries d
		where d.state in ('pending', 'delivering')
		  and d.next_attempt_at <= now()
		  and not (d.endpoint_id = any(p_skip))
		order by d.next_attempt_at
		limit p_limit
		for update of d skip locked
	), held as (
		-- A lease that expired while its endpoint was being disabled
		-- or paused: held until lp_webhook_enable.
		update webhook_deliveries d
		set state = 'held', leased_by = null, updated_at = now()
		from c, webhook_endpoints e
		where d.id = c.id
		  and e.workspace_id = d.workspace_id and e.id = d.endpoint_id
		  and e.status <> 'WEBHOOK_STATUS_ACTIVE'
	)
	update webhook_deliveries d
	set state = 'delivering',
	    attempts = d.attempts + 1,
	    next_attempt_at = now() + p_lease_ms * interval '1 ms',
	    leased_by = p_owner,
	    updated_at = now()
	from c, webhook_messages m, webhook_endpoints e
	where d.id = c.id
	  and m.workspace_id = d.workspace_id and m.id = d.message_id
	  and e.workspace_id = d.workspace_id and e.id = d.endpoint_id
	  and e.status = 'WEBHOOK_STATUS_ACTIVE'
	returning d.id, d.workspace_id, d.endpoint_id, d.message_id,
		  d.attempts, m.event_type, m.payload, e.endpoint_url,
		  e.headers::text, e.max_in_flight, e.rate_limit_per_second,
		  array(select s.secret from webhook_secrets s
			where s.workspace_id = e.workspace_id
			  and s.endpoint_id = e.id
			  and (s.expires_at is null or s.expires_at > now())
			order by s.id desc);
end;
$$;

-- Extends p_owner's leases (deliveries waiting locally behind a limit).
create function lp_delivery_renew(p_owner text, p_ids bigint[],
				  p_lease_ms int)
returns int
language sql
as $$
	-- Rows locked right now are being written by lp_delivery_results
	-- (their lease ends there anyway): skipped, so that the two never
	-- wait for each other in different orders.
	with l as (
		select id from webhook_deliveries
		where id = any(p_ids) and state = 'delivering'
		  and leased_by = p_owner
		order by id
		for update skip locked
	), u as (
		update webhook_deliveries d
		set next_attempt_at = now() + p_lease_ms * interval '1 ms'
		from l
		where d.id = l.id
		returning 1)
	select count(*)::int from u
$$;

-- Gives claimed deliveries back unsent (shutdown, a circuit that opened):
-- due after p_delay_ms, the claim's attempt not counted; held if their
-- endpoint is no longer active (disabled by a 410 meanwhile).
create function lp_delivery_release(p_owner text, p_ids bigint[],
				    p_delay_ms bigint default 0)
returns int
language sql
as $$
	with u as (
		update webhook_deliveries d
		set state = case when exists (
				select 1 from webhook_endpoints e
				where e.workspace_id = d.workspace_id
				  and e.id = d.endpoint_id
				  and e.status = 'WEBHOOK_STATUS_ACTIVE')
			    then 'pending' else 'held' end,
		    attempts = greatest(attempts - 1, 0),
		    next_attempt_at = now() + p_delay_ms * interval '1 ms',
		    leased_by = null, updated_at = now()
		where id = any(p_ids) and state = 'delivering'
		  and leased_by = p_owner
		returning 1)
	select count(*)::int from u
$$;

-- Records a batch of attempts' outcomes, all arrays in step:
--   p_outcome: 'delivered', 'retry' (due again after p_delay_ms), 'dead'
--   (schedule exhausted) or 'gone' (410: the endpoint is disabled);
--   p_status: HTTP status or null; p_latency_ms; p_error; p_snippet.
-- Only deliveries still leased by p_owner are touched (a lease that
-- expired and was taken over belongs to the new owner).  Keeps the
-- endpoints' counters, disables an endpoint that answered 410 or has
-- failed continuously for p_disable_after_ms, and queues the operational
-- messages.  Returns the endpoints disabled now.
create function lp_delivery_results(p_owner text, p_ids bigint[],
				    p_outcome text[], p_delay_ms bigint[],
				    p_status int[], p_latency_ms int[],
				    p_error text[], p_snippet text[],
				    p_disable_after_ms bigint)
returns table (endpoint_id uuid, workspace_id uuid, reason text)
language plpgsql
as $$
#variable_conflict use_column
declare
	r record;
	v_dead jsonb;
	v_touched uuid[];
	v_gone uuid[];
begin
	-- The endpoints' counters are updated below: lock their rows in one
	-- order first, so that two instances writing results for the same
	-- endpoints never deadlock.
	perform 1 from webhook_endpoints e
	where (e.workspace_id, e.id) in (
		select d.workspace_id, d.endpoint_id from webhook_deliveries d
		where d.id = any(p_ids))
	order by e.workspace_id, e.id
	for no key update;

	with input as (
		select * from unnest(p_ids, p_outcome, p_delay_ms, p_status,
				     p_latency_ms, p_error, p_snippet)
			as t(id, outcome, delay_ms, status, latency_ms, error,
			     snippet)
	), upd as (
		update webhook_deliveries d
		set state = case i.outcome
				when 'delivered' then 'delivered'
				-- An endpoint disabled (410) or paused
				-- meanwhile holds its retries.
				when 'retry' then case when exists (
					select 1 from webhook_endpoints e
					where e.workspace_id = d.workspace_id
					  and e.id = d.endpoint_id
					  and e.status = 'WEBHOOK_STATUS_ACTIVE')
				    then 'pending' else 'held' end
				when 'dead' then 'dead'
				else 'held' end,
		    next_attempt_at = case when i.outcome = 'retry'
			then now() + i.delay_ms * interval '1 ms'
			else d.next_attempt_at end,
		    leased_by = null,
		    last_status = i.status,
		    last_error = i.error,
		    updated_at = now(),
		    delivered_at = case when i.outcome = 'delivered' then now()
				   else d.delivered_at end
		from input i
		where d.id = i.id and d.state = 'delivering'
		  and d.leased_by = p_owner
		returning d.id, i.outcome, i.status, i.latency_ms, i.error,
			  i.snippet, d.workspace_id, d.endpoint_id,
			  d.message_id, d.attempts
	), att as (
		insert into webhook_attempts (workspace_id, endpoint_id,
					      delivery_id, message_id, attempt,
					      status_code, latency_ms, error,
					      response_snippet)
		select u.workspace_id, u.endpoint_id, u.id, u.message_id,
		       u.attempts, u.status, u.latency_ms, u.error, u.snippet
		from upd u
	), per as (
		-- Failures after the batch's last success continue a run.
		select u.workspace_id, u.endpoint_id,
		       count(*) filter (where u.outcome = 'delivered') as ok,
		       count(*) filter (where u.outcome <> 'delivered') as bad,
		       count(*) filter (where u.outcome <> 'delivered'
			   and u.id > coalesce(l.last_ok, 0)) as trailing_bad,
		       bool_or(u.outcome = 'delivered') as any_ok
		from upd u
		left join (select x.endpoint_id, max(x.id) as last_ok
			   from upd x where x.outcome = 'delivered'
			   group by x.endpoint_id) l
		  on l.endpoint_id = u.endpoint_id
		group by u.workspace_id, u.endpoint_id
	), epu as (
		update webhook_endpoints e
		set success_count = e.success_count + per.ok,
		    failure_count = e.failure_count + per.bad,
		    consecutive_failures = case
			when per.any_ok then per.trailing_bad
			else e.consecutive_failures + per.bad end,
		    failing_since = case
			when per.any_ok and per.trailing_bad = 0 then null
			when per.any_ok then now()
			else coalesce(e.failing_since, now()) end,
		    last_sent_at = now(),
		    last_delivered_at = case when per.any_ok then now()
					else e.last_delivered_at end,
		    updated_at = now()
		from per
		where e.workspace_id = per.workspace_id
		  and e.id = per.endpoint_id
		returning e.id
	)
	select (select jsonb_agg(jsonb_build_object(
			'ws', u.workspace_id, 'endpointId', u.endpoint_id,
			'msgId', u.message_id, 'attempts', u.attempts,
			'lastStatus', u.status, 'lastError', u.error))
		from upd u where u.outcome = 'dead'),
	       (select array_agg(distinct u.endpoint_id) from upd u),
	       (select array_agg(distinct u.endpoint_id) from upd u
		where u.outcome = 'gone'),
	       (select count(*) from epu) -- runs the endpoint update
	into v_dead, v_touched, v_gone;

	-- Exhausted messages: tell the operational endpoints.
	for r in select * from jsonb_array_elements(coalesce(v_dead, '[]'))
	loop
		perform lp_webhook_emit((r.value->>'ws')::uuid,
			'message.attempt.exhausted',
			jsonb_build_object(
				'endpointId', r.value->'endpointId',
				'msgId', r.value->'msgId',
				'eventType', (select m.event_type
					from webhook_messages m
					where m.workspace_id =
						(r.value->>'ws')::uuid
					  and m.id = r.value->>'msgId'),
				'attempts', r.value->'attempts',
				'lastStatus', r.value->'lastStatus',
				'lastError', r.value->'lastError'),
			(r.value->>'endpointId')::uuid);
	end loop;

	-- Disable: 410 Gone, or failing for too long.
	for r in
		select e.workspace_id, e.id,
		       case when e.id = any(coalesce(v_gone, '{}'))
			    then 'the endpoint answered 410 Gone'
			    else 'failing continuously since '
				 || to_char(e.failing_since at time zone 'UTC',
					    'YYYY-MM-DD"T"HH24:MI:SS"Z"') end
			   as why
		from webhook_endpoints e
		where e.id = any(coalesce(v_touched, '{}'))
		  and e.status = 'WEBHOOK_STATUS_ACTIVE'
		  and (e.id = any(coalesce(v_gone, '{}'))
		       or e.failing_since < now()
			   - p_disable_after_ms * interval '1 ms')
	loop
		perform lp_webhook_disable(r.workspace_id, r.id, r.why);
		endpoint_id := r.id;
		workspace_id := r.workspace_id;
		reason := r.why;
		return next;
	end loop;
end;
$$;

-- Disables an endpoint: its waiting deliveries are held, and the
-- workspace's operational endpoints get endpoint.disabled.
create function lp_webhook_disable(ws uuid, ep uuid, why text)
returns boolean
language plpgsql
as $$
declare
	e webhook_endpoints;
begin
	update webhook_endpoints
	set status = 'WEBHOOK_STATUS_DISABLED', disabled_reason = why,
	    updated_at = now()
	where workspace_id = ws and id = ep
	  and status <> 'WEBHOOK_STATUS_DISABLED'
	returning * into e;
	if not found then
		return false;
	end if;
	update webhook_deliveries
	set state = 'held', updated_at = now()
	where workspace_id = ws and endpoint_id = ep and state = 'pending';
	perform lp_webhook_emit(ws, 'endpoint.disabled',
		jsonb_build_object('endpointId', e.id, 'name', e.name,
				   'endpointUrl', e.endpoint_url,
				   'reason', why,
				   'failingSince', e.failing_since),
		ep);
	return true;
end;
$$;

-- Makes an endpoint active again: its held deliveries become due now and
-- its run of failures is forgotten.
create function lp_webhook_enable(ws uuid, ep uuid)
returns int
language plpgsql
as $$
declare
	n int;
begin
	update webhook_endpoints
	set status = 'WEBHOOK_STATUS_ACTIVE', disabled_reason = null,
	    consecutive_failures = 0, failing_since = null,
	    updated_at = now()
	where workspace_id = ws and id = ep;
	if not found then
		return null;
	end if;
	update webhook_deliveries
	set state = 'pending', next_attempt_at = now(), updated_at = now()
	where workspace_id = ws and endpoint_id = ep and state = 'held';
	get diagnostics n = row_count;
	if n > 0 then
		perform pg_notify('linkpulse_deliveries', '');
	end if;
	return n;
end;
$$;

-- Pauses or disables by hand (PATCH status): waiting deliveries are held.
create function lp_webhook_hold(ws uuid, ep uuid, p_status text)
returns void
language sql
as $$
	update webhook_endpoints
	set status = p_status, updated_at = now()
	where workspace_id = ws and id = ep;
	update webhook_deliveries
	set state = 'held', updated_at = now()
	where workspace_id = ws and endpoint_id = ep and state = 'pending';
$$;

-- Re-sends an endpoint's messages: those created since p_since (any
-- outcome), or with p_failed_only those that are dead or still failing.
-- Deliveries being attempted right now are left alone.  Returns how many
-- were queued.
create function lp_webhook_replay(ws uuid, ep uuid, p_since timestamptz,
				  p_failed_only boolean)
returns int
language plpgsql
as $$
declare
	n int;
	st text;
begin
	select status into st from webhook_endpoints
	where workspace_id = ws and id = ep;
	if not found then
		return null;
	end if;
	update webhook_deliveries d
	set state = case when st = 'WEBHOOK_STATUS_ACTIVE' then 'pending'
		    else 'held' end,
	    attempts = 0, next_attempt_at = now(), leased_by = null,
	    updated_at = now()
	where d.workspace_id = ws and d.endpoint_id = ep
	  and d.state <> 'delivering'
	  and (p_since is null or d.created_at >= p_since)
	  and (not p_failed_only or d.state = 'dead'
	       or (d.state in ('pending', 'held') and d.attempts > 0));
	get diagnostics n = row_count;
	if n > 0 then
		perform pg_notify('linkpulse_deliveries', '');
	end if;
	return n;
end;
$$;

-- Retention: deletes up to p_limit attempts and finished deliveries older
-- than p_age_ms, then messages left without deliveries.  Returns the rows
-- deleted; call again while it returns p_limit or more.
create function lp_delivery_prune(p_age_ms bigint, p_limit int)
returns int
language plpgsql
as $$
declare
	n int;
	total int := 0;
	horizon timestamptz := now() - p_age_ms * interval '1 ms';
begin
	delete from webhook_attempts
	where id in (select id from webhook_attempts
		     where attempted_at < horizon
		     order by attempted_at limit p_limit);
	get diagnostics n = row_count;
	total := total + n;
	delete from webhook_deliveries
	where id in (select id from webhook_deliveries
		     where state in ('delivered', 'dead')
		       and updated_at < horizon
		     order by updated_at limit p_limit);
	get diagnostics n = row_count;
	total := total + n;
	delete from webhook_messages m
	where (m.workspace_id, m.id) in (
		select m2.workspace_id, m2.id from webhook_messages m2
		where m2.created_at < horizon
		  and not exists (select 1 from webhook_deliveries d
				  where d.workspace_id = m2.workspace_id
				    and d.message_id = m2.id)
		order by m2.created_at limit p_limit);
	get diagnostics n = row_count;
	return total + n;
end;
$$;

-- The outbox consumer: turns one pipeline batch into messages and
-- deliveries, in the batch's transaction.  scan.created goes to the active
-- endpoints of the event's workspace subscribed to it, filtered by link,
-- tags of the link and workflow step kinds; one message per event and
-- payload shape (full: the event with its link, device and visitor; thin:
-- ids).  A form submission by a visitor known by email or external id
-- also emits visitor.identified.  Returns the messages queued.
create function lp_outbox_apply(prev pg_snapshot, cur pg_snapshot,
				from_xid xid8, from_id bigint,
				to_xid xid8, to_id bigint)
returns int
language plpgsql
as $$
declare
	n int := 0;
	m int;
begin
	-- Most batches of most installations: nobody listens.
	if not exists (select 1 from webhook_endpoints
		       where status = 'WEBHOOK_STATUS_ACTIVE') then
		return 0;
	end if;

	-- Per event, the endpoints that want it, grouped by payload shape:
	-- one message each.  A lateral subquery, not a join of two lists,
	-- so nothing is matched against everything else in the batch.
	with wanted as (
		select e.workspace_id, e.id as event_id, k.kind, k.endpoints,
		       lp_webhook_message_id() as mid,
		       lp_webhook_body('scan.created', e.occurred_at,
				       lp_scan_data(e, k.kind)) as body
		from lp_batch_events(prev, cur, from_xid, from_id, to_xid,
				     to_id) e
		cross join lateral (
			select w.payload as kind, array_agg(w.id) as endpoints
			from webhook_endpoints w
			where w.workspace_id = e.workspace_id
			  and w.status = 'WEBHOOK_STATUS_ACTIVE'
			  and lp_webhook_subscribes(w.event_types,
						    'scan.created')
			  and (w.link_id is null or w.link_id = e.link_id)
			  and (cardinality(w.triggers) = 0
			       or e.workflow_step = any(w.triggers))
			  and (cardinality(w.tag_ids) = 0
			       or exists (select 1 from link_tags lt
					  where lt.workspace_id =
						e.workspace_id
					    and lt.link_id = e.link_id
					    and lt.tag_id = any(w.tag_ids)))
			group by w.payload
		) k
	), msgs as (
		insert into webhook_messages (workspace_id, id, event_type,
					      event_id, kind, payload)
		select w.workspace_id, w.mid, 'scan.created', w.event_id,
		       w.kind, w.body
		from wanted w
	)
	insert into webhook_deliveries (workspace_id, endpoint_id, message_id)
	select w.workspace_id, unnest(w.endpoints), w.mid
	from wanted w;
	get diagnostics n = row_count;

	select count(lp_webhook_emit(e.workspace_id, 'visitor.identified',
			jsonb_strip_nulls(jsonb_build_object(
				'visitor', lp_visitor_data(v),
				'eventId', e.id::text,
				'linkId', e.link_id,
				'identifiedAt', e.occurred_at))))
	into m
	from lp_batch_events(prev, cur, from_xid, from_id, to_xid, to_id) e
	join visitors v on v.workspace_id = e.workspace_id
		       and v.id = e.visitor_id
	where e.action = 'ACTION_FORM_SUBMISSION'
	  and (v.email is not null or v.external_id is not null)
	  and exists (select 1 from webhook_endpoints w
		      where w.workspace_id = e.workspace_id
			and w.status = 'WEBHOOK_STATUS_ACTIVE'
			and lp_webhook_subscribes(w.event_types,
						  'visitor.identified'));
	return n + coalesce(m, 0);
end;
$$;

-- A visitor as webhooks show it (Linkbreakers Visitor names).
create function lp_visitor_data(v visitors)
returns jsonb
language sql
stable
as $$
	select jsonb_strip_nulls(jsonb_build_object(
		'id', v.id,
		'externalId', v.external_id,
		'email', v.email,
		'firstName', v.first_name,
		'lastName', v.last_name,
		'phone', v.phone,
		'company', v.company,
		'jobTitle', v.job_title,
		'attributes', nullif(v.attributes, '{}'),
		'visitCount', v.visit_count,
		'firstSeenAt', v.first_seen_at,
		'lastSeenAt', v.last_seen_at,
		'leadScore', v.lead_score))
$$;

-- The data of a scan.created message.  Thin: ids only, for receivers that
-- fetch what they need.  Full: the event with its link (and tags), device
-- and visitor.
create function lp_scan_data(e events, p_kind text)
returns jsonb
language sql
stable
as $$
	select case when p_kind = 'thin' then jsonb_strip_nulls(
		jsonb_build_object(
			'id', e.id::text,
			'workspaceId', e.workspace_id,
			'linkId', e.link_id,
			'qrcodeId', e.qr_code_id,
			'visitorId', e.visitor_id,
			'deviceId', e.device_id,
			'action', e.action,
			'occurredAt', e.occurred_at))
	else jsonb_strip_nulls(jsonb_build_object(
		'id', e.id::text,
		'workspaceId', e.workspace_id,
		'linkId', e.link_id,
		'visitorId', e.visitor_id,
		'occurredAt', e.occurred_at,
		'action', e.action,
		'status', e.status,
		'errorCode', e.error_code,
		'redirectLatencyMs', e.redirect_latency_ms,
		'visitType', e.visit_type,
		'destination', e.destination,
		'referrer', e.referrer,
		'workflowStep', e.workflow_step,
		'utm', nullif(jsonb_strip_nulls(jsonb_build_object(
			'source', e.utm_source, 'medium', e.utm_medium,
			'campaign', e.utm_campaign, 'term', e.utm_term,
			'content', e.utm_content)), '{}'),
		'properties', nullif(e.properties, '{}'),
		'qrcodeId', e.qr_code_id,
		'link', (select jsonb_strip_nulls(jsonb_build_object(
				'id', l.id, 'shortlink', l.shortlink,
				'name', l.name, 'destination', l.destination,
				'tags', (select jsonb_agg(jsonb_build_object(
						'id', t.id, 'name', t.name)
						order by t.name)
					 from link_tags lt
					 join tags t on t.workspace_id =
							lt.workspace_id
						    and t.id = lt.tag_id
					 where lt.workspace_id = l.workspace_id
					   and lt.link_id = l.id)))
			 from links l
			 where l.workspace_id = e.workspace_id
			   and l.id = e.link_id),
		'device', jsonb_strip_nulls(jsonb_build_object(
			'id', e.device_id,
			'country', e.country, 'region', e.region,
			'city', e.city, 'timezone', e.timezone,
			'isp', e.isp, 'asn', e.asn,
			'deviceType', e.device_type,
			'platform', e.platform, 'browser', e.browser,
			'language', e.language,
			'deviceActor', case when e.is_bot
					    then 'DEVICE_ACTOR_BOT'
					    else 'DEVICE_ACTOR_HUMAN' end)),
		'visitor', (select lp_visitor_data(v) from visitors v
			    where v.workspace_id = e.workspace_id
			      and v.id = e.visitor_id)))
	end
$$;

-- Endpoints declared in the configuration file (the webhooks section), as a
-- JSON array of {workspace, name, url, secret, description, eventTypes,
-- headers, maxInFlight, rateLimitPerSecond, payload, format, operational}.
-- Each is created or updated by (workspace, name) and marked managed; a
-- new secret starts signing and the old ones keep signing for
-- p_overlap_ms.  Managed endpoints no longer declared are disabled (and
-- enabled again if they come back).  Returns one row per endpoint:
-- created, updated, unchanged, unknown workspace, or disabled.
create function lp_webhook_sync(defs jsonb, p_overlap_ms bigint)
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
			operational, managed)
		values (ws, d->>'name', d->>'description', d->>'url',
			coalesce(array(select jsonb_array_elements_text(
				d->'eventTypes')), '{scan.created}'),
			coalesce(d->'headers', '{}'),
			(d->>'rateLimitPerSecond')::int,
			coalesce((d->>'maxInFlight')::int, 10),
			coalesce(d->>'payload', 'full'),
			coalesce(d->>'format', 'standard'),
			coalesce((d->>'operational')::boolean, false), true)
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
		    managed = true,
		    updated_at = case when (e.description, e.endpoint_url,
			e.event_types, e.headers, e.rate_limit_per_second,
			e.max_in_flight, e.payload, e.format, e.operational,
			e.managed) is distinct from (excluded.description,
			excluded.endpoint_url, excluded.event_types,
			excluded.headers, excluded.rate_limit_per_second,
			excluded.max_in_flight, excluded.payload,
			excluded.format, excluded.operational, true)
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
