-- 0001_init.sql - the initial schema: tenants, tokens, the link catalogue,
-- visitors and devices, and the time-partitioned events table.
--
-- Applied by schema.c inside one transaction (do not add BEGIN/COMMIT here).
-- Every table carries workspace_id, and primary keys lead with it, so the
-- schema can later be distributed by workspace with Citus.  Enumerated
-- values use the Linkbreakers API spelling (ACTION_SCAN, DEVICE_TYPE_MOBILE,
-- ...) so the REST layer passes them through unchanged.

-- Tenants.  A workspace's workspace_id is its own id.
create table workspaces (
	id uuid primary key default gen_random_uuid(),
	slug text not null unique
		check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
	name text not null check (name <> ''),
	plan text not null default 'free'
		check (plan in ('free', 'pro', 'enterprise')),
	-- How long events are kept, in days (395: a year plus a month, so a
	-- year-over-year comparison still has its whole previous period).
	retention_days int not null default 395 check (retention_days > 0),
	-- IANA name; analytics buckets and schedules are computed in it.
	timezone text not null default 'UTC',
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now()
);

create table members (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	email text not null check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
	role text not null default 'member'
		check (role in ('admin', 'tech', 'member', 'viewer')),
	created_at timestamptz not null default now(),
	primary key (workspace_id, id),
	unique (workspace_id, email)
);

-- API tokens (Linkbreakers WorkspaceToken).  Only the SHA-256 of a token is
-- stored; prefix is its first 12 characters, shown to tell tokens apart.
-- token_hash is unique across workspaces because a request is resolved
-- from its bearer token alone (under Citus this table is a reference
-- table).
create table api_tokens (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	created_by uuid null,
	name text not null check (name <> ''),
	key_type text not null default 'workspace',
	environment text not null
		check (environment in ('development', 'production', 'analytics')),
	scopes text[] not null check (cardinality(scopes) > 0),
	token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
	prefix text not null,
	created_at timestamptz not null default now(),
	expires_at timestamptz null,
	revoked_at timestamptz null,
	last_used_at timestamptz null,
	primary key (workspace_id, id),
	foreign key (workspace_id, created_by) references members
		on delete set null (created_by)
);

-- The link catalogue ---------------------------------------------------------

-- A short link and its workflow (Linkbreakers Link).  shortlink is the path
-- segment of the public URL, entrypoint the full URL that serves it.
create table links (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	shortlink text not null check (shortlink ~ '^[A-Za-z0-9_-]{1,64}$'),
	entrypoint text null,
	name text null,
	destination text null,
	fallback_destination text null,
	custom_domain_id uuid null,
	directory_id uuid null,
	qrcode_design_id uuid null,
	qrcode_template_id uuid null,
	page_theme_id uuid null,
	-- Free text read by lead scoring: why the link exists, who is a lead.
	lead_goal_definition text null,
	lead_target_definition text null,
	-- String to string map, at most 50 keys (checked by the API).
	metadata jsonb not null default '{}'
		check (jsonb_typeof(metadata) = 'object'),
	-- Maintained by the rollups, a few seconds behind.
	event_count bigint not null default 0,
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id),
	unique (workspace_id, shortlink)
);

create table tags (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	name text not null check (name <> ''),
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id),
	unique (workspace_id, name)
);

create table link_tags (
	workspace_id uuid not null,
	link_id uuid not null,
	tag_id uuid not null,
	created_at timestamptz not null default now(),
	primary key (workspace_id, link_id, tag_id),
	foreign key (workspace_id, link_id) references links on delete cascade,
	foreign key (workspace_id, tag_id) references tags on delete cascade
);
create index link_tags_tag_idx on link_tags (workspace_id, tag_id);

-- A QR code printed for a link, with its design (Linkbreakers QrcodeDesign;
-- colours, dots and corner options stay in design).
create table qr_codes (
	workspace_id uuid not null,
	id uuid not null default gen_random_uuid(),
	link_id uuid not null,
	name text null,
	shape text not null default 'SHAPE_SQUARE'
		check (shape in ('SHAPE_UNSPECIFIED', 'SHAPE_SQUARE',
				 'SHAPE_CIRCLE')),
	output_file_format text not null default 'OUTPUT_FILE_FORMAT_PNG'
		check (output_file_format in ('OUTPUT_FILE_FORMAT_UNSPECIFIED',
		       'OUTPUT_FILE_FORMAT_SVG', 'OUTPUT_FILE_FORMAT_PNG',
		       'OUTPUT_FILE_FORMAT_JPEG', 'OUTPUT_FILE_FORMAT_WEBP')),
	error_correction_level text not null default 'M'
		check (error_correction_level in ('L', 'M', 'Q', 'H')),
	width int null check (width > 0),
	height int null check (height > 0),
	design jsonb not null default '{}'
		check (jsonb_typeof(design) = 'object'),
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id),
	foreign key (workspace_id, link_id) references links on delete cascade
);
create index qr_codes_link_idx on qr_codes (workspace_id, link_id);

-- Visitors and devices -------------------------------------------------------

-- A visitor profile (Linkbreakers Visitor).  external_id is the caller's
-- own identifier when it identifies visitors itself.  attributes maps a
-- key (without "$") to {"type": "VISITOR_ATTRIBUTE_TYPE_...", "value": raw
-- string}.  lead_score_components holds the Linkbreakers LeadScoreBreakdown
-- members (brandSupportiveness, engagementLevel, profileFit,
-- recurringInterest, technologicalAptitude), each 0-100 or absent.
create table visitors (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	external_id text null,
	email text null,
	first_name text null,
	last_name text null,
	phone text null,
	company text null,
	job_title text null,
	attributes jsonb not null default '{}'
		check (jsonb_typeof(attributes) = 'object'),
	visit_count bigint not null default 0,
	first_seen_at timestamptz null,
	last_seen_at timestamptz null,
	lead_score int null check (lead_score between 0 and 100),
	lead_score_components jsonb not null default '{}'
		check (jsonb_typeof(lead_score_components) = 'object'),
	lead_scored_at timestamptz null,
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id),
	unique (workspace_id, external_id)
);
create index visitors_email_idx on visitors (workspace_id, lower(email))
	where email is not null;
create index visitors_last_seen_idx on visitors (workspace_id, last_seen_at);

-- A device fingerprint (Linkbreakers Device), attributed to a visitor once
-- known.  Geo columns come from IP geolocation.
create table devices (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	visitor_id uuid null,
	-- geo
	ip_address inet null,
	country text null check (country ~ '^[A-Z]{2}$'),
	region text null,
	state text null,
	city text null,
	timezone text null,
	isp text null,
	asn bigint null check (asn >= 0),
	-- device
	device_type text not null default 'DEVICE_TYPE_UNSPECIFIED'
		check (device_type in ('DEVICE_TYPE_UNSPECIFIED',
		       'DEVICE_TYPE_NATIVE', 'DEVICE_TYPE_MOBILE',
		       'DEVICE_TYPE_TABLET', 'DEVICE_TYPE_DESKTOP',
		       'DEVICE_TYPE_UNKNOWN')),
	device_name text null,
	device_brand text null,
	platform_name text null,
	platform_version text null,
	browser_name text null,
	browser_version text null,
	browser_language text null,
	user_agent text null,
	-- who operates it: a human, a crawler, an AI agent
	device_actor text not null default 'DEVICE_ACTOR_UNSPECIFIED'
		check (device_actor in ('DEVICE_ACTOR_UNSPECIFIED',
		       'DEVICE_ACTOR_HUMAN', 'DEVICE_ACTOR_BOT',
		       'DEVICE_ACTOR_AGENT', 'DEVICE_ACTOR_UNKNOWN')),
	device_actor_name text null,
	device_actor_origin text null,
	-- browser-reported capabilities
	gpu text null,
	device_memory double precision null,
	device_concurrency int null,
	screen_width double precision null,
	screen_height double precision null,
	screen_ratio double precision null,
	touch_screen boolean null,
	network_connection text null,
	network_rtt double precision null,
	network_bandwidth double precision null,
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	last_used_at timestamptz null,
	primary key (workspace_id, id),
	foreign key (workspace_id, visitor_id) references visitors
		on delete set null (visitor_id)
);
create index devices_visitor_idx on devices (workspace_id, visitor_id)
	where visitor_id is not null;

-- Events ---------------------------------------------------------------------

create sequence events_id_seq as bigint;

-- One scan, click or workflow action (Linkbreakers Event), partitioned by
-- month of occurred_at.  id comes from a sequence, so ids commit out of
-- order: consumers follow (xid, id) below the snapshot's xmin, never id
-- alone.  Geo and device columns are copied from the device at insert time
-- so that filters and breakdowns need no join.  There are deliberately no
-- foreign keys to links, devices or visitors: the table is large and hot,
-- producers check references, and deleting a visitor clears visitor_id
-- itself.
create table events (
	workspace_id uuid not null references workspaces on delete cascade,
	id bigint not null default nextval('events_id_seq'),
	xid xid8 not null default pg_current_xact_id(),
	occurred_at timestamptz not null,
	received_at timestamptz not null default now(),
	link_id uuid null,
	qr_code_id uuid null,
	device_id uuid null,
	visitor_id uuid null,
	action text not null default 'ACTION_SCAN'
		check (action in ('ACTION_UNSPECIFIED', 'ACTION_SCAN',
				  'ACTION_CLICK')),
	-- The workflow step that produced the destination (EventAction).
	destination_action text null
		check (destination_action in ('EVENT_ACTION_UNSPECIFIED',
		       'EVENT_ACTION_CLIENT_REDIRECT', 'EVENT_ACTION_LINK_VISIT',
		       'EVENT_ACTION_PASSWORD_VERIFY', 'EVENT_ACTION_FORM_SUBMIT',
		       'EVENT_ACTION_CONTACT_CARD', 'EVENT_ACTION_MULTI_LINK',
		       'EVENT_ACTION_VISIT_TYPE_CONDITION',
		       'EVENT_ACTION_COUNTRY_CONDITION',
		       'EVENT_ACTION_DAY_OF_WEEK_CONDITION',
		       'EVENT_ACTION_TIME_OF_DAY_CONDITION',
		       'EVENT_ACTION_DAY_OF_MONTH_CONDITION',
		       'EVENT_ACTION_SPECIFIC_DATE_CONDITION',
		       'EVENT_ACTION_SOCIAL_LINKS_PAGE',
		       'EVENT_ACTION_DEVICE_TYPE_CONDITION',
		       'EVENT_ACTION_DEVICE_PLATFORM_CONDITION',
		       'EVENT_ACTION_DEVICE_BROWSER_CONDITION',
		       'EVENT_ACTION_DEVICE_BRAND_CONDITION',
		       'EVENT_ACTION_DEVICE_ACTOR_CONDITION',
		       'EVENT_ACTION_VISITOR_DATA_CONDITION',
		       'EVENT_ACTION_THANK_YOU_PAGE',
		       'EVENT_ACTION_MESSAGE_PAGE')),
	visit_type text not null default 'VISIT_TYPE_UNSPECIFIED'
		check (visit_type in ('VISIT_TYPE_UNSPECIFIED',
		       'VISIT_TYPE_FIRST', 'VISIT_TYPE_RETURNING')),
	triggered_by text not null default 'TRIGGERED_BY_VISITOR'
		check (triggered_by in ('TRIGGERED_BY_UNSPECIFIED',
		       'TRIGGERED_BY_VISITOR')),
	http_method text not null default 'HTTP_METHOD_GET'
		check (http_method in ('HTTP_METHOD_UNSPECIFIED',
		       'HTTP_METHOD_GET', 'HTTP_METHOD_POST', 'HTTP_METHOD_PUT',
		       'HTTP_METHOD_DELETE', 'HTTP_METHOD_PATCH',
		       'HTTP_METHOD_OPTIONS', 'HTTP_METHOD_HEAD')),
	entrypoint text null,
	destination text null,
	-- Outcome of serving the event: ok, error (error_code says which) or
	-- blocked (refused on purpose: password, bot policy, ...).
	status text not null default 'ok'
		check (status in ('ok', 'error', 'blocked')),
	error_code text null,
	redirect_latency_ms int null check (redirect_latency_ms >= 0),
	-- copied from the device
	country text null,
	region text null,
	city text null,
	timezone text null,
	device_type text null,
	platform text null,
	browser text null,
	language text null,
	is_bot boolean not null default false,
	-- acquisition
	referrer text null,
	utm_source text null,
	utm_medium text null,
	utm_campaign text null,
	utm_term text null,
	utm_content text null,
	-- stepAction of the last workflow step reached
	workflow_step text null,
	properties jsonb not null default '{}'
		check (jsonb_typeof(properties) = 'object'),
	primary key (workspace_id, occurred_at, id)
) partition by range (occurred_at);

alter sequence events_id_seq owned by events.id;

-- Time-range scans across workspaces (retention, exports): tiny and cheap
-- to maintain because rows arrive roughly in time order.
create index events_occurred_brin on events using brin (occurred_at);
-- The listener's durable cursor walks all events in commit order.
create index events_xid_idx on events (xid, id);
-- Incremental sync for one workspace, in the same order.
create index events_workspace_xid_idx on events (workspace_id, xid, id);
-- Per-link analytics and a visitor's timeline.
create index events_link_idx on events (workspace_id, link_id, occurred_at);
create index events_visitor_idx on events (workspace_id, visitor_id,
					    occurred_at)
	where visitor_id is not null;

-- Creates the missing monthly partitions events_yYYYYmMM (months in UTC)
-- for every month that intersects [from_ts, to_ts], and returns how many it
-- created.  Idempotent, and safe to run concurrently: it serialises its
-- callers on a transaction-scoped advisory lock.  There is no default partition, so an
-- event outside the prepared months fails loudly instead of landing in a
-- catch-all that would later block creating its month.
create function lp_ensure_event_partitions(from_ts timestamptz,
					   to_ts timestamptz)
returns int
language plpgsql
strict
as $$
declare
	parent regclass := 'events'::regclass;
	nsp text;
	month timestamp;
	last_month timestamp;
	part text;
	created int := 0;
begin
	if from_ts > to_ts then
		raise exception 'lp_ensure_event_partitions: from_ts % is after to_ts %',
			from_ts, to_ts;
	end if;

	-- "lpevpart" in ASCII: the same key for every caller.
	perform pg_advisory_xact_lock(7813856912853791348);

	select quote_ident(n.nspname) into nsp
	from pg_class c join pg_namespace n on n.oid = c.relnamespace
	where c.oid = parent;

	month := date_trunc('month', from_ts at time zone 'UTC');
	last_month := date_trunc('month', to_ts at time zone 'UTC');
	while month <= last_month loop
		part := 'events_y' || to_char(month, 'YYYY') || 'm'
			|| to_char(month, 'MM');
		if to_regclass(nsp || '.' || quote_ident(part)) is null then
			execute format(
			    'create table %s.%I partition of %s '
			    'for values from (%L) to (%L)',
			    nsp, part, parent,
			    to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00',
			    to_char(month + interval '1 month', 'YYYY-MM-DD')
				|| ' 00:00:00+00');
			created := created + 1;
		end if;
		month := month + interval '1 month';
	end loop;
	return created;
end;
$$;

select lp_ensure_event_partitions(now() - interval '1 month',
				  now() + interval '3 months');

-- Workflow steps of an event (Linkbreakers EventTrace).  An event is
-- identified by (workspace_id, event_id); event_occurred_at lets a lookup
-- of the event prune to one partition.
create table event_traces (
	workspace_id uuid not null references workspaces on delete cascade,
	id uuid not null default gen_random_uuid(),
	event_id bigint not null,
	event_occurred_at timestamptz not null,
	link_id uuid null,
	visitor_id uuid null,
	step_kind text not null
		check (step_kind in ('ENTRY', 'EXIT', 'INTERACTION',
				     'CONDITION')),
	step_action text not null,
	-- EventTraceData: one member named after the step (form, redirect...).
	step_data jsonb not null default '{}'
		check (jsonb_typeof(step_data) = 'object'),
	completed_at timestamptz null,
	created_at timestamptz not null default now(),
	updated_at timestamptz not null default now(),
	primary key (workspace_id, id)
);
create index event_traces_event_idx on event_traces (workspace_id, event_id);
