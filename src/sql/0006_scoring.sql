-- 0006_scoring.sql - lead scores: per-visitor features kept by the
-- pipeline's scoring consumer (scoring.c calls lp_scoring_apply once per
-- batch, in the batch's transaction, after the rollups and before the
-- outbox), the score and its components on visitors, and
-- visitor.qualified when a score reaches the workspace's threshold.
--
-- Features are counters updated set-wise from each batch, so a score never
-- reads a visitor's past events again; what must be exact and cannot be
-- a counter has a small table of its own: the links a visitor has scanned
-- (distinct links, and the tags of each link counted once), and the days
-- a visitor was active (distinct days, and the idle time between the last
-- two).  Everything depends on the set of events consumed, not on how the
-- batches cut them, except when visitor.qualified is judged: once per
-- batch, on the score after all of the visitor's events in it.
--
-- The model (weights, points, half-life, tag points, output) comes from
-- the daemon's configuration as JSON with each batch; the README's "Lead
-- scores" section documents the formulas.  Events without a visitor, or
-- whose visitor no longer exists, are left out.
--
-- The feature tables reference visitors (and go with them); links and tags
-- are looked up, not referenced: a deleted link still counts as scanned.

-- The workspace's own qualification threshold; null: the configuration's
-- lead_scoring.qualify_threshold.
alter table workspaces add column lead_qualify_threshold int null
	check (lead_qualify_threshold between 0 and 100);

-- One row per scored visitor.  scans counts visits (ACTION_SCAN,
-- ACTION_RESCAN, ACTION_CLICK); the device is the one of the visitor's
-- most recent event (by occurred_at) that names a platform or a browser.
-- visit_count, first_seen_at and last_seen_at live on visitors.
create table visitor_features (
	workspace_id uuid not null,
	visitor_id uuid not null,
	scans bigint not null default 0,
	interactions bigint not null default 0,
	form_submissions bigint not null default 0,
	conversions bigint not null default 0,
	distinct_links bigint not null default 0,
	active_days bigint not null default 0,
	device_at timestamptz null,
	device_type text null,
	platform text null,
	browser text null,
	updated_at timestamptz not null default now(),
	primary key (workspace_id, visitor_id),
	foreign key (workspace_id, visitor_id) references visitors
		on delete cascade
);

-- The links a visitor has scanned (any action on the link), with the
-- visits on each.
create table visitor_links (
	workspace_id uuid not null,
	visitor_id uuid not null,
	link_id uuid not null,
	first_at timestamptz not null,
	scans bigint not null default 0,
	primary key (workspace_id, visitor_id, link_id),
	foreign key (workspace_id, visitor_id) references visitors
		on delete cascade
);

-- The tags of the links a visitor has scanned: how many of those links
-- carried the tag when the visitor first came to them.  Kept by tag, not
-- as points, so that a reload of lead_scoring.tag_points or a renamed tag
-- applies to past scans too.
create table visitor_tags (
	workspace_id uuid not null,
	visitor_id uuid not null,
	tag_id uuid not null,
	links bigint not null,
	primary key (workspace_id, visitor_id, tag_id),
	foreign key (workspace_id, visitor_id) references visitors
		on delete cascade
);

-- The days a visitor was active, in the workspace's time zone (a change
-- of zone applies to later events).
create table visitor_days (
	workspace_id uuid not null,
	visitor_id uuid not null,
	day date not null,
	primary key (workspace_id, visitor_id, day),
	foreign key (workspace_id, visitor_id) references visitors
		on delete cascade
);

-- The six components of a visitor's score (LeadScore names), 0-100 each,
-- or null when not measurable: brandSupportiveness without tag points in
-- the model, technologicalAptitude without a known platform or browser.
-- idle: whole days without a visit between the visitor's last two active
-- days; brand: the tag points of the links scanned (null: no tag points).
-- One expression, so that the planner inlines it (stable, not immutable:
-- so is jsonb_build_object, and a mismatch would prevent inlining).
create function lp_scoring_components(v visitors, f visitor_features,
				      idle int, brand bigint, model jsonb)
returns jsonb
language sql
stable
as $$
	select jsonb_build_object(
		'engagementLevel', least(100,
			f.interactions * (model->'points'->>'interaction')::bigint
			+ f.form_submissions
			  * (model->'points'->>'formSubmission')::bigint
			+ f.conversions
			  * (model->'points'->>'conversion')::bigint),
		'recurringInterest', floor(
			least(100, 40 * ln(greatest(f.active_days, 1)) / ln(2))
			* power(2::float8, -(idle * 86400000::float8)
				/ (model->>'recencyHalfLifeMs')::float8)
			+ 0.5)::int,
		'recurringScans', least(100,
			floor(25 * ln(1 + f.scans) / ln(2) + 0.5))::int,
		'profileFit', 25 * ((coalesce(btrim(v.email), '') <> '')::int
				    + (coalesce(btrim(v.company), '') <> '')::int
				    + (coalesce(btrim(v.job_title), '') <> '')::int
				    + (coalesce(btrim(v.phone), '') <> '')::int),
		-- least() would skip a null: null stays null.
		'brandSupportiveness', case when brand is not null
					    then least(100, brand)::int end,
		'technologicalAptitude', case
			when coalesce(f.platform, '') <> ''
			     or coalesce(f.browser, '') <> '' then
			(case when lower(f.platform) in ('windows', 'macos',
				'mac os x', 'ios', 'ipados', 'android', 'linux',
				'chromeos', 'chrome os') then 30
			      when coalesce(f.platform, '') <> '' then 10
			      else 0 end)
			+ (case when lower(f.browser) in ('chrome', 'firefox',
				'safari', 'edge', 'opera', 'brave', 'vivaldi',
				'arc', 'samsung internet') then 50
			      when coalesce(f.browser, '') <> '' then 20
			      else 0 end)
			+ (case f.device_type
			      when 'DEVICE_TYPE_DESKTOP' then 20
			      when 'DEVICE_TYPE_MOBILE' then 10
			      when 'DEVICE_TYPE_TABLET' then 10
			      else 0 end) end)
$$;

-- The weight of component k in the mean: its weight in the model when it
-- was measured, else 0.
create function lp_scoring_weight(c jsonb, k text, model jsonb)
returns numeric
language sql
immutable
as $$
	select case when c->>k is null then 0
		    else greatest(coalesce((model->'weights'->>k)::numeric, 0),
				  0) end
$$;

-- The weighted mean of components c, rounded half up (0 when nothing
-- measured weighs).
create function lp_scoring_mean(c jsonb, model jsonb)
returns numeric
language sql
immutable
as $$
	select coalesce(floor((
		lp_scoring_weight(c, 'engagementLevel', model)
		* coalesce((c->>'engagementLevel')::numeric, 0)
		+ lp_scoring_weight(c, 'recurringInterest', model)
		  * coalesce((c->>'recurringInterest')::numeric, 0)
		+ lp_scoring_weight(c, 'recurringScans', model)
		  * coalesce((c->>'recurringScans')::numeric, 0)
		+ lp_scoring_weight(c, 'profileFit', model)
		  * coalesce((c->>'profileFit')::numeric, 0)
		+ lp_scoring_weight(c, 'brandSupportiveness', model)
		  * coalesce((c->>'brandSupportiveness')::numeric, 0)
		+ lp_scoring_weight(c, 'technologicalAptitude', model)
		  * coalesce((c->>'technologicalAptitude')::numeric, 0))
		/ nullif(lp_scoring_weight(c, 'engagementLevel', model)
			 + lp_scoring_weight(c, 'recurringInterest', model)
			 + lp_scoring_weight(c, 'recurringScans', model)
			 + lp_scoring_weight(c, 'profileFit', model)
			 + lp_scoring_weight(c, 'brandSupportiveness', model)
			 + lp_scoring_weight(c, 'technologicalAptitude', model),
			 0)
		+ 0.5), 0)
$$;

-- The score of components c: their weighted mean, or with the logistic
-- output 100 / (1 + e^(-steepness (mean - midpoint))), rounded half up.
create function lp_scoring_output(c jsonb, model jsonb)
returns int
language sql
immutable
as $$
	select case when model->>'output' = 'logistic' then
		floor(100 / (1 + exp(least(700, greatest(-700,
			-(model->'logistic'->>'steepness')::float8
			* (lp_scoring_mean(c, model)::float8
			   - (model->'logistic'->>'midpoint')::float8)))))
		      + 0.5)::int
	       else lp_scoring_mean(c, model)::int end
$$;

-- The scoring consumer: folds one pipeline batch (the parameters of
-- lp_batch_events) into the features of its visitors, scores each of
-- them once with model (see scoring.c for its members), keeps
-- visit_count, first_seen_at and last_seen_at, and queues
-- visitor.qualified for a visitor whose score went from below the
-- threshold (or none) to at or above it.  Returns the visitors scored.
create function lp_scoring_apply(prev pg_snapshot, cur pg_snapshot,
				 from_xid xid8, from_id bigint,
				 to_xid xid8, to_id bigint, model jsonb)
returns int
language plpgsql
as $$
declare
	n int;
	m int;
begin
	-- The batch's visitors, locked in key order: a concurrent delete of
	-- one waits for this batch, or the batch skips a visitor it deleted.
	perform 1
	from visitors v
	where (v.workspace_id, v.id) in
		(select e.workspace_id, e.visitor_id
		 from lp_batch_events(prev, cur, from_xid, from_id,
				      to_xid, to_id) e
		 where e.visitor_id is not null)
	order by v.workspace_id, v.id
	for no key update of v;
	if not found then
		return 0;
	end if;

	-- The features.  Every sub-statement sees the tables as they were
	-- before it, so links_new is the links scanned for the first time.
	-- Here and below, batches are joined to tables by index and
	-- aggregated, never joined to each other: plpgsql keeps generic
	-- plans, which guess that a batch has a handful of events.
	with ev as (
		select e.workspace_id, e.visitor_id, e.xid, e.id, e.link_id,
		       e.occurred_at, e.action, e.device_type, e.platform,
		       e.browser
		from lp_batch_events(prev, cur, from_xid, from_id,
				     to_xid, to_id) e
		join visitors v on v.workspace_id = e.workspace_id
			       and v.id = e.visitor_id
	), zones as materialized (
		select w.id as workspace_id, lp_zone_or_utc(w.timezone) as tz
		from workspaces w
		where w.id in (select ev.workspace_id from ev)
	), days_new as (
		insert into visitor_days (workspace_id, visitor_id, day)
		select distinct ev.workspace_id, ev.visitor_id,
		       (ev.occurred_at at time zone z.tz)::date
		from ev
		join zones z on z.workspace_id = ev.workspace_id
		order by 1, 2, 3
		on conflict do nothing
		returning workspace_id, visitor_id
	), links_b as (
		select ev.workspace_id, ev.visitor_id, ev.link_id,
		       count(*) filter (where ev.action in ('ACTION_SCAN',
				'ACTION_RESCAN', 'ACTION_CLICK')) as scans,
		       min(ev.occurred_at) as first_at
		from ev
		where ev.link_id is not null
		group by 1, 2, 3
	), links_new as (
		select b.workspace_id, b.visitor_id, b.link_id
		from links_b b
		where not exists (select 1 from visitor_links l
				  where l.workspace_id = b.workspace_id
				    and l.visitor_id = b.visitor_id
				    and l.link_id = b.link_id)
	), links_up as (
		insert into visitor_links as t
			(workspace_id, visitor_id, link_id, first_at, scans)
		select b.workspace_id, b.visitor_id, b.link_id, b.first_at,
		       b.scans
		from links_b b
		order by 1, 2, 3
		on conflict (workspace_id, visitor_id, link_id)
		do update set scans = t.scans + excluded.scans,
			      first_at = least(t.first_at, excluded.first_at)
	), tags_up as (
		insert into visitor_tags as t
			(workspace_id, visitor_id, tag_id, links)
		select n.workspace_id, n.visitor_id, lt.tag_id, count(*)
		from links_new n
		join link_tags lt on lt.workspace_id = n.workspace_id
				 and lt.link_id = n.link_id
		group by 1, 2, 3
		order by 1, 2, 3
		on conflict (workspace_id, visitor_id, tag_id)
		do update set links = t.links + excluded.links
	), per as (
		-- Counts, and the device of the latest event that names one.
		select ev.workspace_id, ev.visitor_id,
		       count(*) filter (where ev.action in ('ACTION_SCAN',
				'ACTION_RESCAN', 'ACTION_CLICK')) as scans,
		       count(*) filter (where ev.action =
				'ACTION_WORKFLOW_INTERACTION') as interactions,
		       count(*) filter (where ev.action =
				'ACTION_FORM_SUBMISSION') as forms,
		       count(*) filter (where ev.action =
				'ACTION_CONVERSION') as conversions,
		       max(ev.occurred_at) filter (where ev.named)
			as device_at,
		       (array_agg(array[ev.device_type, ev.platform,
					ev.browser]
				  order by ev.occurred_at desc, ev.xid desc,
					   ev.id desc)
			filter (where ev.named))[1:1] as dev
		from (select ev.*,
			     coalesce(ev.platform, '') <> ''
			     or coalesce(ev.browser, '') <> '' as named
		      from ev) ev
		group by 1, 2
	), d as (
		-- Summed, not joined: nothing here depends on the planner
		-- guessing how many events the batch has.
		select p.workspace_id, p.visitor_id, p.scans, p.interactions,
		       p.forms, p.conversions, 0 as links, 0 as days,
		       p.device_at, p.dev
		from per p
		union all
		select n.workspace_id, n.visitor_id, 0, 0, 0, 0, 1, 0, null,
		       null
		from links_new n
		union all
		select n.workspace_id, n.visitor_id, 0, 0, 0, 0, 0, 1, null,
		       null
		from days_new n
	)
	insert into visitor_features as f
		(workspace_id, visitor_id, scans, interactions,
		 form_submissions, conversions, distinct_links, active_days,
		 device_at, device_type, platform, browser)
	select d.workspace_id, d.visitor_id, sum(d.scans), sum(d.interactions),
	       sum(d.forms), sum(d.conversions), sum(d.links), sum(d.days),
	       max(d.device_at), max(d.dev[1][1]), max(d.dev[1][2]),
	       max(d.dev[1][3])
	from d
	group by 1, 2
	order by 1, 2
	on conflict (workspace_id, visitor_id) do update
	set scans = f.scans + excluded.scans,
	    interactions = f.interactions + excluded.interactions,
	    form_submissions = f.form_submissions + excluded.form_submissions,
	    conversions = f.conversions + excluded.conversions,
	    distinct_links = f.distinct_links + excluded.distinct_links,
	    active_days = f.active_days + excluded.active_days,
	    device_at = case when excluded.device_at >= f.device_at
				  or f.device_at is null
			     then coalesce(excluded.device_at, f.device_at)
			     else f.device_at end,
	    device_type = case when excluded.device_at >= f.device_at
				    or f.device_at is null
			       then excluded.device_type
			       else f.device_type end,
	    platform = case when excluded.device_at >= f.device_at
				 or f.device_at is null
			    then excluded.platform else f.platform end,
	    browser = case when excluded.device_at >= f.device_at
				or f.device_at is null
			   then excluded.browser else f.browser end,
	    updated_at = now();

	-- The scores, the visitors' counts, and visitor.qualified.  The
	-- event that did it is the visitor's last of the batch.
	with b as (
		select e.workspace_id, e.visitor_id, count(*) as n,
		       min(e.occurred_at) as first_at,
		       max(e.occurred_at) as last_at,
		       (array_agg(e.id order by e.xid desc, e.id desc))[1]
			as event_id,
		       (array_agg(e.link_id order by e.xid desc, e.id desc))[1]
			as link_id,
		       (array_agg(e.occurred_at order by e.xid desc,
				  e.id desc))[1] as event_at
		from lp_batch_events(prev, cur, from_xid, from_id,
				     to_xid, to_id) e
		where e.visitor_id is not null
		group by 1, 2
	), tp as (
		select lower(x.key) as tag, x.value::bigint as points
		from jsonb_each_text(model->'tagPoints') x
	), s as materialized (
		select b.*, v.lead_score as old_score,
		       coalesce(w.lead_qualify_threshold,
				(model->>'threshold')::int) as threshold,
		       lp_scoring_components(v, f, r.idle, case
				when exists (select 1 from tp) then (
				-- Index lookups per visitor, like idle.
				select coalesce(sum(vt.links * tp.points), 0)
				from visitor_tags vt
				join tags t on t.workspace_id = vt.workspace_id
					   and t.id = vt.tag_id
				join tp on tp.tag = lower(t.name)
				where vt.workspace_id = b.workspace_id
				  and vt.visitor_id = b.visitor_id)::bigint
				end, model) as c
		from b
		join visitors v on v.workspace_id = b.workspace_id
			       and v.id = b.visitor_id
		join visitor_features f on f.workspace_id = b.workspace_id
				       and f.visitor_id = b.visitor_id
		join workspaces w on w.id = b.workspace_id
		cross join lateral (
			-- The whole days without a visit between the last two
			-- active days.
			select greatest(coalesce(max(d.day) - min(d.day) - 1,
						 0), 0) as idle
			from (select d.day from visitor_days d
			      where d.workspace_id = b.workspace_id
				and d.visitor_id = b.visitor_id
			      order by d.day desc
			      limit 2) d
		) r
	), u as (
		update visitors v
		set visit_count = v.visit_count + x.n,
		    first_seen_at = least(v.first_seen_at, x.first_at),
		    last_seen_at = greatest(v.last_seen_at, x.last_at),
		    lead_score = x.score,
		    lead_score_components = x.c,
		    lead_scored_at = now()
		from (select s.*, lp_scoring_output(s.c, model) as score
		      from s) x
		where v.workspace_id = x.workspace_id and v.id = x.visitor_id
		returning v as visitor, x.old_score, x.score, x.c,
			  x.threshold, x.event_id, x.link_id, x.event_at
	)
	select count(*),
	       count(case when u.score >= u.threshold
			   and (u.old_score is null
				or u.old_score < u.threshold)
		     then lp_webhook_emit((u.visitor).workspace_id,
			'visitor.qualified',
			jsonb_strip_nulls(jsonb_build_object(
				'visitor', lp_visitor_data(u.visitor),
				'leadScore', u.score,
				'threshold', u.threshold,
				'eventId', u.event_id::text,
				'linkId', u.link_id,
				'qualifiedAt', u.event_at))
			|| jsonb_build_object('components', u.c)) end)
	into n, m
	from u;
	return n;
end;
$$;
