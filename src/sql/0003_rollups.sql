-- 0003_rollups.sql - aggregates of the events table, kept by the
-- pipeline's rollup consumer (rollup.c calls lp_rollup_apply once per
-- batch, in the batch's transaction), and the functions that answer
-- campaign questions from them.
--
-- Time buckets are 15 minutes of UTC.  Every zone in use today is offset
-- from UTC by a multiple of 15 minutes (Asia/Kolkata +5:30,
-- Asia/Kathmandu +5:45, America/St_Johns -3:30, Australia/Eucla +8:45),
-- and shifts for daylight saving on such a boundary too, so each bucket
-- lies inside one local hour and one local day in every zone: hourly and
-- daily answers summed from buckets are exact wherever the viewer is.
--
-- Unique visitors are HyperLogLog sketches (the hll extension), so the
-- visitors of a day, a week or a campaign are the union of its buckets'
-- sketches, never a sum.  A visitor is visitor_id, else device_id (an
-- event with neither adds to the counts but to no sketch).  Sketches are
-- hll(12, 5): exact up to 320 visitors (the explicit representation),
-- then about 1.6% standard error, at most 2.5 KB each.  Whatever is
-- unioned with them must be built with the same parameters:
-- hll_add_agg(lp_visitor_hash(visitor_id, device_id), 12, 5).
--
-- Several narrow tables rather than one wide one: a table keyed by every
-- dimension at once would have a row for nearly every event, while each of
-- these is keyed only by what its family of questions groups by.
--   rollup_links      per link, QR code, action, status, visit type, bot:
--                     time series, top links, QR codes, error rates,
--                     redirect latency, new versus returning
--   rollup_geo        per country, region, city, time zone (and bot)
--   rollup_devices    per device type, platform, browser, language (and bot)
--   rollup_geo_daily  per link, day in the workspace's zone, country: the
--                     hot "per link per day by country" question
-- Tags are answered by joining link_tags at query time: a link's tags
-- change, its events do not, and a tag's visitors are the union of its
-- links' sketches.
--
-- Key columns keep NULL for "unknown", as in events; the unique
-- constraints are NULLS NOT DISTINCT so that ON CONFLICT folds a NULL key
-- like any other value.  Every key leads with workspace_id (Citus).
--
-- The tables have no foreign key to workspaces: a backfill inserts about
-- one rollup row per event and table, and the key check of each new row
-- costs a third of its insert.  Rows only come from events, which do
-- reference their workspace, and a trigger below deletes a workspace's
-- rollups with it.

create extension if not exists hll;

-- The HLL hash of an event's visitor.  The one place that says who a
-- visitor is; inlined by the planner.
create function lp_visitor_hash(visitor_id uuid, device_id uuid)
returns hll_hashval
language sql
immutable
parallel safe
as $$
	select hll_hash_bytea(uuid_send(coalesce(visitor_id, device_id)))
$$;

-- An IANA zone name PostgreSQL knows, else 'UTC'.  A workspace whose
-- timezone was set to a name that no longer resolves (tzdata removes
-- aliases) must not stop the pipeline for every workspace.
create function lp_zone_or_utc(tz text)
returns text
language plpgsql
stable
as $$
begin
	perform now() at time zone tz;
	return tz;
exception when invalid_parameter_value then
	return 'UTC';
end;
$$;

create table rollup_links (
	workspace_id uuid not null,
	link_id uuid null,
	bucket timestamptz not null,
	qr_code_id uuid null,
	action text not null,
	status text not null,
	visit_type text not null,
	is_bot boolean not null,
	events bigint not null,
	visitors hll(12, 5) not null,
	-- over the events that report a redirect latency
	latency_sum bigint not null,
	latency_count bigint not null,
	constraint rollup_links_key unique nulls not distinct
		(workspace_id, link_id, bucket, qr_code_id, action, status,
		 visit_type, is_bot)
);
-- Workspace-wide time series and top links read a time range across links.
create index rollup_links_bucket_idx on rollup_links (workspace_id, bucket);

create table rollup_geo (
	workspace_id uuid not null,
	link_id uuid null,
	bucket timestamptz not null,
	country text null,
	region text null,
	city text null,
	timezone text null,
	is_bot boolean not null,
	events bigint not null,
	visitors hll(12, 5) not null,
	constraint rollup_geo_key unique nulls not distinct
		(workspace_id, link_id, bucket, country, region, city,
		 timezone, is_bot)
);

create table rollup_devices (
	workspace_id uuid not null,
	link_id uuid null,
	bucket timestamptz not null,
	device_type text null,
	platform text null,
	browser text null,
	language text null,
	is_bot boolean not null,
	events bigint not null,
	visitors hll(12, 5) not null,
	constraint rollup_devices_key unique nulls not distinct
		(workspace_id, link_id, bucket, device_type, platform, browser,
		 language, is_bot)
);

-- Days in the workspace's own zone (workspaces.timezone), so its most
-- asked question reads at most one row per day and country.  Exact for
-- that zone only: other zones sum rollup_geo's buckets instead.  When the
-- workspace's zone changes, a trigger below rebuilds its rows.
create table rollup_geo_daily (
	workspace_id uuid not null,
	link_id uuid null,
	day date not null,
	country text null,
	events bigint not null,
	visitors hll(12, 5) not null,
	-- The sketch's estimate, kept with it: 90 days by country is 3,600
	-- rows, and decoding as many sketches at read time would cost more
	-- than all the rest of the query.
	visitor_count bigint not null
		generated always as (round(hll_cardinality(visitors))) stored,
	constraint rollup_geo_daily_key unique nulls not distinct
		(workspace_id, link_id, day, country)
);

-- Folds one pipeline batch (the parameters of lp_batch_events) into every
-- rollup table and links.event_count; returns the number of events
-- folded.  Called once per batch, in the transaction that advances the
-- cursor, so each event is counted exactly once.  Rows are written and
-- locked in key order, so two writers cannot deadlock on them.
create function lp_rollup_apply(prev pg_snapshot, cur pg_snapshot,
				from_xid xid8, from_id bigint,
				to_xid xid8, to_id bigint)
returns int
language plpgsql
as $$
declare
	n int;
begin
	-- A change of a workspace's zone rebuilds its daily rows: the share
	-- lock makes that change wait for this batch, or this batch (and the
	-- days it computes) wait for the change.
	perform 1
	from workspaces w
	where w.id in (select e.workspace_id
		       from lp_batch_events(prev, cur, from_xid, from_id,
					    to_xid, to_id) e)
	order by w.id
	for share of w;

	-- The links whose event_count the batch bumps, in key order.
	perform 1
	from links l
	where (l.workspace_id, l.id) in
		(select e.workspace_id, e.link_id
		 from lp_batch_events(prev, cur, from_xid, from_id,
				      to_xid, to_id) e)
	order by l.workspace_id, l.id
	for no key update of l;

	-- One scan of the batch feeds every table (b is read several times,
	-- so it is materialised once).
	with b as (
		select e.workspace_id, e.link_id, e.qr_code_id,
		       e.occurred_at,
		       date_bin('15 minutes', e.occurred_at,
				timestamptz '1970-01-01 00:00:00+00') as bucket,
		       e.action, e.status, e.visit_type, e.is_bot,
		       e.redirect_latency_ms,
		       e.country, e.region, e.city, e.timezone,
		       e.device_type, e.platform, e.browser, e.language,
		       lp_visitor_hash(e.visitor_id, e.device_id) as visitor
		from lp_batch_events(prev, cur, from_xid, from_id,
				     to_xid, to_id) e
	), zones as (
		select w.id as workspace_id, lp_zone_or_utc(w.timezone) as tz
		from workspaces w
		where w.id in (select b.workspace_id from b)
	), links_up as (
		insert into rollup_links as t
			(workspace_id, link_id, bucket, qr_code_id, action,
			 status, visit_type, is_bot, events, visitors,
			 latency_sum, latency_count)
		select b.workspace_id, b.link_id, b.bucket, b.qr_code_id,
		       b.action, b.status, b.visit_type, b.is_bot, count(*),
		       hll_add_agg(b.visitor, 12, 5),
		       coalesce(sum(b.redirect_latency_ms), 0),
		       count(b.redirect_latency_ms)
		from b
		group by 1, 2, 3, 4, 5, 6, 7, 8
		order by 1, 2, 3, 4, 5, 6, 7, 8
		on conflict (workspace_id, link_id, bucket, qr_code_id, action,
			     status, visit_type, is_bot)
		do update set events = t.events + excluded.events,
			      visitors = hll_union(t.visitors, excluded.visitors),
			      latency_sum = t.latency_sum + excluded.latency_sum,
			      latency_count = t.latency_count
					      + excluded.latency_count
	), geo_up as (
		insert into rollup_geo as t
			(workspace_id, link_id, bucket, country, region, city,
			 timezone, is_bot, events, visitors)
		select b.workspace_id, b.link_id, b.bucket, b.country, b.region,
		       b.city, b.timezone, b.is_bot, count(*),
		       hll_add_agg(b.visitor, 12, 5)
		from b
		group by 1, 2, 3, 4, 5, 6, 7, 8
		order by 1, 2, 3, 4, 5, 6, 7, 8
		on conflict (workspace_id, link_id, bucket, country, region,
			     city, timezone, is_bot)
		do update set events = t.events + excluded.events,
			      visitors = hll_union(t.visitors, excluded.visitors)
	), devices_up as (
		insert into rollup_devices as t
			(workspace_id, link_id, bucket, device_type, platform,
			 browser, language, is_bot, events, visitors)
		select b.workspace_id, b.link_id, b.bucket, b.device_type,
		       b.platform, b.browser, b.language, b.is_bot, count(*),
		       hll_add_agg(b.visitor, 12, 5)
		from b
		group by 1, 2, 3, 4, 5, 6, 7, 8
		order by 1, 2, 3, 4, 5, 6, 7, 8
		on conflict (workspace_id, link_id, bucket, device_type,
			     platform, browser, language, is_bot)
		do update set events = t.events + excluded.events,
			      visitors = hll_union(t.visitors, excluded.visitors)
	), daily_up as (
		insert into rollup_geo_daily as t
			(workspace_id, link_id, day, country, events, visitors)
		select b.workspace_id, b.link_id,
		       (b.occurred_at at time zone z.tz)::date, b.country,
		       count(*), hll_add_agg(b.visitor, 12, 5)
		from b
		join zones z on z.workspace_id = b.workspace_id
		group by 1, 2, 3, 4
		order by 1, 2, 3, 4
		on conflict (workspace_id, link_id, day, country)
		do update set events = t.events + excluded.events,
			      visitors = hll_union(t.visitors, excluded.visitors)
	), counts_up as (
		-- The rows were locked above, in key order.
		update links l
		set event_count = l.event_count + c.n
		from (select b.workspace_id, b.link_id, count(*) as n
		      from b
		      where b.link_id is not null
		      group by 1, 2) c
		where l.workspace_id = c.workspace_id and l.id = c.link_id
	)
	select count(*) into n from b;
	return n;
end;
$$;

-- Deletes a workspace's rollups with it.  lp_rollup_apply's share lock
-- on the workspace makes the delete wait for a batch in progress, so no
-- row is left behind.
create function lp_rollup_forget_workspace()
returns trigger
language plpgsql
as $$
begin
	delete from rollup_links t where t.workspace_id = old.id;
	delete from rollup_geo t where t.workspace_id = old.id;
	delete from rollup_devices t where t.workspace_id = old.id;
	delete from rollup_geo_daily t where t.workspace_id = old.id;
	return null;
end;
$$;

create trigger workspaces_rollup_forget
	after delete on workspaces
	for each row
	execute function lp_rollup_forget_workspace();

-- Rebuilds a workspace's daily rows from its 15-minute buckets when its
-- zone changes (exact: each bucket lies in one day of the new zone too).
-- Aggregates over hll states are sorted, not hashed: the planner does not
-- know hll_union_agg's state is 128 KB a group.
create function lp_rollup_rezone()
returns trigger
language plpgsql
set enable_hashagg = off
as $$
begin
	delete from rollup_geo_daily d where d.workspace_id = new.id;
	insert into rollup_geo_daily
		(workspace_id, link_id, day, country, events, visitors)
	select g.workspace_id, g.link_id,
	       (g.bucket at time zone lp_zone_or_utc(new.timezone))::date,
	       g.country, sum(g.events), hll_union_agg(g.visitors)
	from rollup_geo g
	where g.workspace_id = new.id
	group by 1, 2, 3, 4;
	return null;
end;
$$;

create trigger workspaces_rollup_rezone
	after update of timezone on workspaces
	for each row
	when (old.timezone is distinct from new.timezone)
	execute function lp_rollup_rezone();

-- Events and unique visitors of one link per day and country, days
-- from_day through to_day in zone tz (default: the workspace's).  Reads
-- rollup_geo_daily when tz is the workspace's zone, else sums
-- rollup_geo's 15-minute buckets, which is exact in any zone but reads
-- about a hundred times more rows.  visitors is the HLL estimate, rounded.
create function lp_link_daily_by_country(ws uuid, link uuid,
					 from_day date, to_day date,
					 tz text default null)
returns table (day date, country text, events bigint, visitors bigint)
language plpgsql
stable
set enable_hashagg = off
as $$
#variable_conflict use_column
declare
	ws_tz text;
begin
	select lp_zone_or_utc(w.timezone) into ws_tz
	from workspaces w
	where w.id = ws;
	if not found then
		return;
	end if;
	if tz is null or tz = ws_tz then
		return query
		select d.day, d.country, d.events, d.visitor_count
		from rollup_geo_daily d
		where d.workspace_id = ws and d.link_id = link
		  and d.day between from_day and to_day
		order by d.day, d.country;
	else
		return query
		select (g.bucket at time zone tz)::date, g.country,
		       sum(g.events)::bigint,
		       round(hll_cardinality(hll_union_agg(g.visitors)))::bigint
		from rollup_geo g
		where g.workspace_id = ws and g.link_id = link
		  and g.bucket >= from_day::timestamp at time zone tz
		  and g.bucket < (to_day + 1)::timestamp at time zone tz
		group by 1, 2
		order by 1, 2;
	end if;
end;
$$;
