-- 0009_handoff.sql - the outbox hands the deliveries it creates straight
-- to the delivery engine of the instance that runs it, already leased, so
-- a scan's webhook leaves as soon as its batch commits, without a claim.

-- A delivery's message is written in the same statement as the delivery,
-- and the statement's foreign key check ran a plan made once per
-- connection: made while webhook_messages was nearly empty (a new
-- installation, before its first ANALYZE), that plan was a sequential
-- scan, so each new delivery read every message there was.  Messages are
-- only deleted by lp_delivery_prune, once no delivery names them, and
-- with their workspace, whose endpoints take the deliveries with them: the
-- key is kept by the code that writes both.
alter table webhook_deliveries
	drop constraint webhook_deliveries_workspace_id_message_id_fkey;

drop function lp_outbox_apply(pg_snapshot, pg_snapshot, xid8, bigint, xid8,
			      bigint);

-- The outbox consumer: turns one pipeline batch into messages and
-- deliveries, in the batch's transaction.  scan.created goes to the active
-- endpoints of the event's workspace subscribed to it, filtered by link,
-- tags of the link and workflow step kinds; one message per event and
-- payload shape (full: the event with its link, device and visitor; thin:
-- ids).  A form submission by a visitor known by email or external id
-- also emits visitor.identified.
--
-- Up to p_take of the scan.created deliveries (none of an endpoint in
-- p_skip) are written already leased to p_owner for p_lease_ms, their
-- first attempt counted, and returned as lp_delivery_claim returns its
-- rows: the caller sends them once this transaction has committed.  The
-- others wait for a claim.  queued, on every row, is the number of
-- deliveries written; with none handed over, one row with a null id
-- carries it.
create function lp_outbox_apply(prev pg_snapshot, cur pg_snapshot,
				from_xid xid8, from_id bigint,
				to_xid xid8, to_id bigint,
				p_owner text, p_take int, p_lease_ms int,
				p_skip uuid[])
returns table (queued int, id bigint, endpoint_id uuid, message_id text,
	       attempt int, payload text, endpoint_url text, headers text,
	       max_in_flight int, rate_limit_per_second int, secrets text[])
language plpgsql
as $$
#variable_conflict use_column
declare
	m int;
begin
	-- Most batches of most installations: nobody listens.
	if not exists (select 1 from webhook_endpoints
		       where status = 'WEBHOOK_STATUS_ACTIVE') then
		return query select 0, null::bigint, null::uuid, null::text,
			null::int, null::text, null::text, null::text,
			null::int, null::int, null::text[];
		return;
	end if;

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

	-- Nobody wants scan.created (endpoints for alerts only, say): no
	-- need to look at each event.
	if not exists (select 1 from webhook_endpoints w
		       where w.status = 'WEBHOOK_STATUS_ACTIVE'
			 and lp_webhook_subscribes(w.event_types,
						   'scan.created')) then
		return query select coalesce(m, 0), null::bigint, null::uuid,
			null::text, null::int, null::text, null::text,
			null::text, null::int, null::int, null::text[];
		return;
	end if;

	-- Per event, the endpoints that want it, grouped by payload shape:
	-- one message each.  A lateral subquery, not a join of two lists,
	-- so nothing is matched against everything else in the batch.
	return query
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
	), each as (
		select w.workspace_id, u.ep, w.mid,
		       not (u.ep = any(p_skip)) as takeable,
		       row_number() over () as rn
		from wanted w
		cross join unnest(w.endpoints) u(ep)
	), ins as (
		insert into webhook_deliveries as d
			(workspace_id, endpoint_id, message_id, state, attempts,
			 next_attempt_at, leased_by)
		select x.workspace_id, x.ep, x.mid,
		       case when x.take then 'delivering' else 'pending' end,
		       case when x.take then 1 else 0 end,
		       case when x.take
			    then clock_timestamp()
				 + p_lease_ms * interval '1 ms'
			    else now() end,
		       case when x.take then p_owner end
		from (select e.*,
			     e.takeable
			     and count(*) filter (where e.takeable)
				 over (order by e.rn) <= p_take as take
		      from each e) x
		returning d.id, d.workspace_id, d.endpoint_id, d.message_id,
			  d.state
	), taken as (
		select i.id, i.endpoint_id, i.message_id, w.body,
		       e.endpoint_url, e.headers::text as headers,
		       e.max_in_flight, e.rate_limit_per_second,
		       array(select s.secret from webhook_secrets s
			     where s.workspace_id = e.workspace_id
			       and s.endpoint_id = e.id
			       and (s.expires_at is null
				    or s.expires_at > now())
			     order by s.id desc) as secrets
		from ins i
		join wanted w on w.mid = i.message_id
		join webhook_endpoints e on e.workspace_id = i.workspace_id
					and e.id = i.endpoint_id
		where i.state = 'delivering'
	)
	select (select count(*)::int from ins) + coalesce(m, 0), t.id,
	       t.endpoint_id, t.message_id, 1, t.body, t.endpoint_url,
	       t.headers, t.max_in_flight, t.rate_limit_per_second, t.secrets
	from (select 1) one
	left join taken t on true;
end;
$$;

-- The wake-up for claims: only when a statement wrote deliveries that wait
-- for one (those handed over are already on their way).
drop trigger webhook_deliveries_notify on webhook_deliveries;
drop function lp_notify_deliveries();
create function lp_notify_deliveries() returns trigger
language plpgsql
as $$
begin
	if exists (select 1 from new_deliveries where state = 'pending') then
		perform pg_notify('linkpulse_deliveries', '');
	end if;
	return null;
end;
$$;
create trigger webhook_deliveries_notify
	after insert on webhook_deliveries
	referencing new table as new_deliveries
	for each statement execute function lp_notify_deliveries();
