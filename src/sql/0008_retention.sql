-- 0008_retention.sql - retention of raw events: each workspace keeps
-- workspaces.retention_days of them (ingestion already refuses older
-- ones).  The rollups and links.event_count keep counting what was
-- removed: they are the long-term record, the raw events are not.
--
-- lp_events_prune is called by the daemon's retention job (retention.c)
-- every few minutes, again and again while it returns its limit, each
-- call a short transaction of its own.

-- Idempotency keys are looked up by workspace and key; retention finds
-- the expired ones per workspace, as it does events.
create index event_keys_workspace_occurred_idx
	on event_keys (workspace_id, occurred_at);
drop index event_keys_occurred_idx;
create index event_traces_workspace_occurred_idx
	on event_traces (workspace_id, event_occurred_at);

-- Drops the monthly partitions of events that ended before the horizon of
-- every workspace (a drop that would wait more than p_lock_ms for readers
-- is left for the next call), then deletes up to p_limit expired events
-- (the oldest first, workspace by workspace through the primary key) and
-- up to p_limit of their idempotency keys and traces.  Returns the rows
-- removed, a dropped partition counted by the planner's estimate of its
-- rows (counting them would read it all); call again while it returns
-- p_limit or more.
create function lp_events_prune(p_limit int, p_lock_ms int default 1000)
returns bigint
language plpgsql
as $$
declare
	n bigint;
	total bigint := 0;
	keep_all timestamptz;
	old_lock text := current_setting('lock_timeout');
	part record;
begin
	-- A month wholly before every workspace's horizon goes at once.
	select min(now() - w.retention_days * interval '1 day')
	into keep_all from workspaces w;
	perform set_config('lock_timeout', p_lock_ms || 'ms', true);
	for part in
		select c.oid::regclass as rel,
		       greatest(c.reltuples, 0)::bigint as rows,
		       (to_date(substr(c.relname, 9, 4)
				|| substr(c.relname, 14, 2), 'YYYYMM')
			+ interval '1 month') at time zone 'UTC' as ends
		from pg_inherits i
		join pg_class c on c.oid = i.inhrelid
		where i.inhparent = 'events'::regclass
		  and c.relname ~ '^events_y[0-9]{4}m[0-9]{2}$'
		order by c.relname
	loop
		exit when keep_all is null or part.ends > keep_all;
		begin
			execute format('drop table %s', part.rel);
			total := total + part.rows;
		exception when lock_not_available then
			raise notice 'lp_events_prune: % is in use; dropped later',
				part.rel;
			exit;
		end;
	end loop;
	perform set_config('lock_timeout', old_lock, true);

	with doomed as (
		select d.workspace_id, d.occurred_at, d.id
		from workspaces w
		cross join lateral (
			select e.workspace_id, e.occurred_at, e.id
			from events e
			where e.workspace_id = w.id
			  and e.occurred_at
			      < now() - w.retention_days * interval '1 day'
			order by e.occurred_at
			limit p_limit) d
		limit p_limit
	)
	delete from events e
	using doomed d
	where e.workspace_id = d.workspace_id
	  and e.occurred_at = d.occurred_at and e.id = d.id;
	get diagnostics n = row_count;
	total := total + n;

	with doomed as (
		select d.workspace_id, d.key
		from workspaces w
		cross join lateral (
			select k.workspace_id, k.key
			from event_keys k
			where k.workspace_id = w.id
			  and k.occurred_at
			      < now() - w.retention_days * interval '1 day'
			limit p_limit) d
		limit p_limit
	)
	delete from event_keys k
	using doomed d
	where k.workspace_id = d.workspace_id and k.key = d.key;
	get diagnostics n = row_count;
	total := total + n;

	with doomed as (
		select d.workspace_id, d.id
		from workspaces w
		cross join lateral (
			select t.workspace_id, t.id
			from event_traces t
			where t.workspace_id = w.id
			  and t.event_occurred_at
			      < now() - w.retention_days * interval '1 day'
			limit p_limit) d
		limit p_limit
	)
	delete from event_traces t
	using doomed d
	where t.workspace_id = d.workspace_id and t.id = d.id;
	get diagnostics n = row_count;
	total := total + n;

	return total;
end;
$$;
