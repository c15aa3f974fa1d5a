/*
 * ctl_seed.c - linkpulsectl seed and simulate: demo data that reads like a
 * real workspace's.
 *
 * seed builds a catalogue in memory from the tables below (places, device
 * models, crawlers, link templates, names): links with tags and QR codes,
 * visitors with profiles, and their devices.  Then it streams N past events
 * into PostgreSQL with COPY (text format) over --jobs connections while
 * the catalogue goes in on the first connection.  Events are made in units
 * of UNIT_EVENTS, each from its own random stream keyed by the seed and the
 * unit's number, and each job takes a fixed range of units: the data
 * depends on the seed, the options and --until only, and nothing is kept
 * per event, so memory does not grow with N.  Nothing is visible until
 * every stream succeeded: the catalogue commits first (so the pipeline
 * finds an event's link), then each job's events.
 *
 * simulate reads a workspace's links and devices and inserts live events at
 * a steady rate: one multi-row INSERT per tick, so that the events table's
 * statement trigger sends one NOTIFY per tick.
 *
 * Both draw events with visit_draw(): a scan or click and what follows it.
 * Called through ctl.c's command table; uses ctl.c's connection helpers and
 * messages, and util.c.  Blocking libpq throughout; seed's extra
 * connections each belong to one thread.
 */
#include "lpconf.h" /* what configure found */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "util.h"

#define US_PER_SEC  1000000LL
#define US_PER_MIN  (60 * US_PER_SEC)
#define US_PER_HOUR (3600 * US_PER_SEC)
#define US_PER_DAY  (86400 * US_PER_SEC)

/* seed */
#define UNIT_EVENTS  8192      /* events of one random stream */
#define FLUSH_BYTES  (1 << 20) /* COPY data handed to libpq at once */
#define ROW_MAX	     2048      /* longest event row, with room to spare */
#define MAX_EVENTS   10000000000LL
#define MAX_DAYS     3650
#define MAX_LINKS    10000
#define MAX_VISITORS 1000000
#define MAX_JOBS     16

/* simulate */
#define TICK_MS		50
#define STATUS_MS	10000
#define PARTITIONS_MS	3600000 /* how often the months ahead are checked */
#define MAX_RATE	100000.0
#define ROWS_PER_INSERT 1000
#define MAX_BURSTS	8

/* The visit model's shares (of visits, not events). */
#define BOT_VISITS	 0.033 /* about 3% of events come from crawlers */
#define ERROR_VISITS	 0.011 /* redirects that fail */
#define INTERACT_VISITS	 0.08  /* a step of the link's workflow */
#define FORM_VISITS	 0.05  /* of identified visitors' visits */
#define CONVERT_VISITS	 0.011
#define EVENTS_PER_VISIT 1.11 /* with the follow-ups above */
#define PRIOR_HISTORY	 0.25 /* visitors were around before the range */

/* ------------------------------------------------------------ the world */

struct isp {
	const char *name;
	unsigned asn;
};

/*
 * Where visitors live.  utc_off is standard time in minutes: good enough to
 * know when people are awake.  state is the postal code where one is used.
 */
struct city {
	const char *country, *region, *state, *name, *tz;
	int utc_off;
	const char *lang, *currency;
	int weight;
	struct isp isp[2];
};

/* clang-format off */
static const struct city cities[] = {
    {"US", "New York", "NY", "New York", "America/New_York", -300, "en-US", "USD", 10,
     {{"Verizon Business", 701}, {"Charter Communications", 12271}}},
    {"US", "California", "CA", "San Francisco", "America/Los_Angeles", -480, "en-US", "USD", 6,
     {{"Comcast Cable Communications", 7922}, {"AT&T Services", 7018}}},
    {"US", "California", "CA", "Los Angeles", "America/Los_Angeles", -480, "en-US", "USD", 5,
     {{"Charter Communications", 20115}, {"T-Mobile USA", 21928}}},
    {"US", "Illinois", "IL", "Chicago", "America/Chicago", -360, "en-US", "USD", 4,
     {{"Comcast Cable Communications", 7922}, {"AT&T Services", 7018}}},
    {"US", "Texas", "TX", "Austin", "America/Chicago", -360, "en-US", "USD", 3,
     {{"Charter Communications", 11427}, {"AT&T Services", 7018}}},
    {"US", "Washington", "WA", "Seattle", "America/Los_Angeles", -480, "en-US", "USD", 3,
     {{"Comcast Cable Communications", 7922}, {"T-Mobile USA", 21928}}},
    {"US", "Massachusetts", "MA", "Boston", "America/New_York", -300, "en-US", "USD", 3,
     {{"Verizon Business", 701}, {"Comcast Cable Communications", 7922}}},
    {"US", "Florida", "FL", "Miami", "America/New_York", -300, "en-US", "USD", 3,
     {{"AT&T Services", 7018}, {"Comcast Cable Communications", 7922}}},
    {"CA", "Ontario", "ON", "Toronto", "America/Toronto", -300, "en-CA", "CAD", 3,
     {{"Rogers Communications", 812}, {"Bell Canada", 577}}},
    {"CA", "Newfoundland and Labrador", "NL", "St. John's", "America/St_Johns", -210, "en-CA", "CAD", 1,
     {{"Bell Aliant", 855}, {"Rogers Communications", 812}}},
    {"MX", "Mexico City", NULL, "Mexico City", "America/Mexico_City", -360, "es-MX", "MXN", 3,
     {{"Uninet (Telmex)", 8151}, {"Radiomovil Dipsa (Telcel)", 28403}}},
    {"BR", "Sao Paulo", NULL, "São Paulo", "America/Sao_Paulo", -180, "pt-BR", "BRL", 4,
     {{"Claro NXT Telecomunicacoes", 28573}, {"Telefonica Brasil (Vivo)", 26599}}},
    {"AR", "Buenos Aires", NULL, "Buenos Aires", "America/Argentina/Buenos_Aires", -180, "es-AR", "ARS", 2,
     {{"Telecom Argentina", 7303}, {"Telefonica de Argentina", 22927}}},
    {"CO", "Bogota", NULL, "Bogotá", "America/Bogota", -300, "es-CO", "COP", 1,
     {{"Telmex Colombia", 10620}, {"Colombia Movil (Tigo)", 27831}}},
    {"GB", "England", NULL, "London", "Europe/London", 0, "en-GB", "GBP", 7,
     {{"British Telecommunications", 2856}, {"Virgin Media", 5089}}},
    {"GB", "England", NULL, "Manchester", "Europe/London", 0, "en-GB", "GBP", 2,
     {{"Sky UK", 5607}, {"Vodafone UK", 25135}}},
    {"IE", "Leinster", NULL, "Dublin", "Europe/Dublin", 0, "en-IE", "EUR", 1,
     {{"Eir", 5466}, {"Vodafone Ireland", 15502}}},
    {"FR", "Ile-de-France", NULL, "Paris", "Europe/Paris", 60, "fr-FR", "EUR", 6,
     {{"Orange", 3215}, {"Free SAS", 12322}}},
    {"FR", "Auvergne-Rhone-Alpes", NULL, "Lyon", "Europe/Paris", 60, "fr-FR", "EUR", 2,
     {{"SFR", 15557}, {"Bouygues Telecom", 5410}}},
    {"DE", "Berlin", NULL, "Berlin", "Europe/Berlin", 60, "de-DE", "EUR", 4,
     {{"Deutsche Telekom", 3320}, {"Vodafone GmbH", 3209}}},
    {"DE", "Bavaria", NULL, "Munich", "Europe/Berlin", 60, "de-DE", "EUR", 3,
     {{"Deutsche Telekom", 3320}, {"Telefonica Germany", 6805}}},
    {"NL", "North Holland", NULL, "Amsterdam", "Europe/Amsterdam", 60, "nl-NL", "EUR", 2,
     {{"KPN", 1136}, {"Ziggo", 33915}}},
    {"BE", "Brussels Capital", NULL, "Brussels", "Europe/Brussels", 60, "fr-BE", "EUR", 1,
     {{"Proximus", 5432}, {"Telenet", 6848}}},
    {"ES", "Madrid", NULL, "Madrid", "Europe/Madrid", 60, "es-ES", "EUR", 3,
     {{"Telefonica de Espana", 3352}, {"Vodafone Spain", 12430}}},
    {"ES", "Catalonia", NULL, "Barcelona", "Europe/Madrid", 60, "es-ES", "EUR", 2,
     {{"Telefonica de Espana", 3352}, {"Orange Espagne", 12479}}},
    {"IT", "Lombardy", NULL, "Milan", "Europe/Rome", 60, "it-IT", "EUR", 2,
     {{"Telecom Italia", 3269}, {"Vodafone Italia", 30722}}},
    {"PT", "Lisbon", NULL, "Lisbon", "Europe/Lisbon", 0, "pt-PT", "EUR", 1,
     {{"MEO", 3243}, {"NOS Comunicacoes", 2860}}},
    {"CH", "Zurich", NULL, "Zurich", "Europe/Zurich", 60, "de-CH", "CHF", 1,
     {{"Swisscom", 3303}, {"Sunrise", 6730}}},
    {"SE", "Stockholm", NULL, "Stockholm", "Europe/Stockholm", 60, "sv-SE", "SEK", 1,
     {{"Telia Company", 3301}, {"Tele2 Sverige", 1257}}},
    {"PL", "Masovia", NULL, "Warsaw", "Europe/Warsaw", 60, "pl-PL", "PLN", 1,
     {{"Orange Polska", 5617}, {"Netia", 12741}}},
    {"TR", "Istanbul", NULL, "Istanbul", "Europe/Istanbul", 180, "tr-TR", "TRY", 2,
     {{"Turk Telekom", 9121}, {"Turkcell", 16135}}},
    {"AE", "Dubai", NULL, "Dubai", "Asia/Dubai", 240, "en-AE", "AED", 1,
     {{"Emirates Telecommunications (e&)", 5384}, {"Emirates Integrated Telecommunications (du)", 15802}}},
    {"ZA", "Gauteng", NULL, "Johannesburg", "Africa/Johannesburg", 120, "en-ZA", "ZAR", 1,
     {{"Vodacom", 29975}, {"MTN South Africa", 16637}}},
    {"NG", "Lagos", NULL, "Lagos", "Africa/Lagos", 60, "en-NG", "NGN", 1,
     {{"MTN Nigeria", 29465}, {"Airtel Nigeria", 36873}}},
    {"KE", "Nairobi", NULL, "Nairobi", "Africa/Nairobi", 180, "en-KE", "KES", 1,
     {{"Safaricom", 33771}, {"Airtel Kenya", 36926}}},
    {"IN", "Maharashtra", NULL, "Mumbai", "Asia/Kolkata", 330, "en-IN", "INR", 4,
     {{"Reliance Jio Infocomm", 55836}, {"Bharti Airtel", 24560}}},
    {"IN", "Karnataka", NULL, "Bengaluru", "Asia/Kolkata", 330, "en-IN", "INR", 3,
     {{"Reliance Jio Infocomm", 55836}, {"Bharti Airtel", 24560}}},
    {"NP", "Bagmati", NULL, "Kathmandu", "Asia/Kathmandu", 345, "ne-NP", "NPR", 1,
     {{"Nepal Telecom", 23752}, {"Ncell", 17501}}},
    {"SG", "Singapore", NULL, "Singapore", "Asia/Singapore", 480, "en-SG", "SGD", 2,
     {{"Singapore Telecommunications", 7473}, {"StarHub", 4657}}},
    {"JP", "Tokyo", NULL, "Tokyo", "Asia/Tokyo", 540, "ja-JP", "JPY", 4,
     {{"NTT Communications", 4713}, {"KDDI", 2516}}},
    {"KR", "Seoul", NULL, "Seoul", "Asia/Seoul", 540, "ko-KR", "KRW", 2,
     {{"Korea Telecom", 4766}, {"SK Broadband", 9318}}},
    {"ID", "Jakarta", NULL, "Jakarta", "Asia/Jakarta", 420, "id-ID", "IDR", 2,
     {{"Telkomsel", 23693}, {"Telkom Indonesia", 7713}}},
    {"PH", "Metro Manila", NULL, "Manila", "Asia/Manila", 480, "en-PH", "PHP", 1,
     {{"PLDT", 9299}, {"Globe Telecom", 4775}}},
    {"AU", "New South Wales", "NSW", "Sydney", "Australia/Sydney", 600, "en-AU", "AUD", 2,
     {{"Telstra", 1221}, {"Optus", 4804}}},
    {"AU", "Victoria", "VIC", "Melbourne", "Australia/Melbourne", 600, "en-AU", "AUD", 1,
     {{"TPG Telecom", 7545}, {"Telstra", 1221}}},
    {"NZ", "Auckland", NULL, "Auckland", "Pacific/Auckland", 720, "en-NZ", "NZD", 1,
     {{"Spark New Zealand", 4771}, {"One NZ", 9500}}},
};
/* clang-format on */

#define NCITIES ((int)nitems(cities))

/* Visits by local hour of day, and by day of week from Monday. */
static const double hourly[24] = {
    0.14, 0.08, 0.05, 0.04, 0.04, 0.07, 0.18, 0.42, 0.70, 0.86, 0.93, 1.00,
    1.00, 0.95, 0.90, 0.90, 0.94, 1.00, 1.00, 0.96, 0.86, 0.70, 0.48, 0.28,
};
static const double weekly[7] = {1.00, 1.04, 1.05, 1.02, 0.96, 0.66, 0.56};

enum dclass { DC_MOBILE, DC_TABLET, DC_DESKTOP, DC_BOT };

/* A device model people use; primary/secondary: how often it is a
 * visitor's first device, or another one. */
struct model {
	enum dclass cls;
	const char *type, *brand, *name, *platform, *pver, *browser, *bver;
	int width, height;
	double memory;
	int cores;
	const char *ua;
	int primary, secondary;
};

/* clang-format off */
static const struct model models[] = {
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Apple", "iPhone 15", "iOS", "17.5", "Safari", "17.5", 393, 852, 6, 6,
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
     15, 2},
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Apple", "iPhone 13", "iOS", "16.7", "Safari", "16.6", 390, 844, 4, 6,
     "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
     11, 2},
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Apple", "iPhone 14 Pro", "iOS", "17.4", "Chrome", "124.0.6367.111", 393, 852, 6, 6,
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.111 Mobile/15E148 Safari/604.1",
     4, 1},
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Samsung", "Galaxy S24", "Android", "14", "Chrome", "125.0.6422.113", 384, 832, 8, 8,
     "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.113 Mobile Safari/537.36",
     10, 1},
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Samsung", "Galaxy A54", "Android", "14", "Samsung Internet", "24.0", 384, 854, 6, 8,
     "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
     7, 1},
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Google", "Pixel 8", "Android", "14", "Chrome", "125.0.6422.113", 412, 915, 8, 8,
     "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.113 Mobile Safari/537.36",
     5, 1},
    {DC_MOBILE, "DEVICE_TYPE_MOBILE", "Xiaomi", "Redmi Note 12", "Android", "13", "Chrome", "124.0.6367.179", 393, 873, 4, 8,
     "Mozilla/5.0 (Linux; Android 13; 23021RAAEG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.179 Mobile Safari/537.36",
     6, 1},
    {DC_TABLET, "DEVICE_TYPE_TABLET", "Apple", "iPad Air", "iPadOS", "17.5", "Safari", "17.5", 820, 1180, 8, 8,
     "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
     3, 5},
    {DC_TABLET, "DEVICE_TYPE_TABLET", "Samsung", "Galaxy Tab S9", "Android", "14", "Chrome", "125.0.6422.113", 800, 1280, 8, 8,
     "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.113 Safari/537.36",
     1, 2},
    {DC_DESKTOP, "DEVICE_TYPE_DESKTOP", NULL, NULL, "Windows", "10", "Chrome", "125.0.0.0", 1920, 1080, 8, 8,
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
     6, 30},
    {DC_DESKTOP, "DEVICE_TYPE_DESKTOP", NULL, NULL, "Windows", "10", "Edge", "125.0.2535.67", 1536, 864, 8, 8,
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.67",
     2, 12},
    {DC_DESKTOP, "DEVICE_TYPE_DESKTOP", NULL, NULL, "Windows", "10", "Firefox", "126.0", 1920, 1080, 8, 4,
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
     1, 5},
    {DC_DESKTOP, "DEVICE_TYPE_DESKTOP", "Apple", "Mac", "macOS", "14.5", "Safari", "17.5", 1512, 982, 8, 8,
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
     3, 14},
    {DC_DESKTOP, "DEVICE_TYPE_DESKTOP", "Apple", "Mac", "macOS", "14.5", "Chrome", "125.0.0.0", 1728, 1117, 8, 10,
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
     2, 12},
    {DC_DESKTOP, "DEVICE_TYPE_DESKTOP", NULL, NULL, "Linux", NULL, "Firefox", "126.0", 1920, 1080, 16, 8,
     "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
     1, 3},
};

/* Crawlers and link unfurlers, from the networks they really come from. */
struct bot {
	const char *name, *origin, *ua;
	const char *country, *region, *state, *city, *tz;
	struct isp isp;
	int weight;
};

static const struct bot bots[] = {
    {"Googlebot", "Google", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "US", "California", "CA", "Mountain View", "America/Los_Angeles", {"Google LLC", 15169}, 8},
    {"bingbot", "Microsoft", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     "US", "Virginia", "VA", "Boydton", "America/New_York", {"Microsoft Corporation", 8075}, 4},
    {"Applebot", "Apple", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
     "US", "California", "CA", "Cupertino", "America/Los_Angeles", {"Apple Inc.", 714}, 2},
    {"facebookexternalhit", "Meta", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
     "US", "Oregon", "OR", "Prineville", "America/Los_Angeles", {"Meta Platforms", 32934}, 5},
    {"WhatsApp", "Meta", "WhatsApp/2.23.20.0",
     "US", "Oregon", "OR", "Prineville", "America/Los_Angeles", {"Meta Platforms", 32934}, 4},
    {"Slackbot-LinkExpanding", "Slack", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
     "US", "Virginia", "VA", "Ashburn", "America/New_York", {"Amazon.com", 14618}, 3},
    {"LinkedInBot", "LinkedIn", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
     "US", "California", "CA", "Sunnyvale", "America/Los_Angeles", {"LinkedIn Corporation", 14413}, 3},
    {"Twitterbot", "X", "Twitterbot/1.0",
     "US", "Georgia", "GA", "Atlanta", "America/New_York", {"X Corp.", 13414}, 2},
    {"python-requests", NULL, "python-requests/2.31.0",
     "IE", "Leinster", NULL, "Dublin", "Europe/Dublin", {"Amazon.com", 16509}, 2},
    {"HeadlessChrome", NULL, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
     "DE", "Saxony", NULL, "Falkenstein", "Europe/Berlin", {"Hetzner Online", 24940}, 2},
};
/* clang-format on */

#define NBOTS ((int)nitems(bots))

/*
 * Link templates.  tags and placements are comma-separated; a placement is
 * a QR code's name.  qr_share: of phone and tablet visits, those that scan
 * a code rather than click; convert: conversion rate, relative.
 */
struct link_tpl {
	const char *name, *shortlink, *destination, *campaign, *team;
	const char *tags, *placements;
	double qr_share, convert;
	const char *goal;
};

/* clang-format off */
static const struct link_tpl link_tpls[] = {
    {"Spring sale flyer", "spring-sale", "https://shop.example.com/sale/spring", "spring-sale", "marketing",
     "print,product,retail", "Flyer A5,Poster A2,Store counter", 0.92, 1.6, NULL},
    {"Pricing page", "pricing", "https://www.example.com/pricing", "always-on", "marketing",
     "pricing,social", "Slide deck", 0.25, 2.4,
     "Visitors who compare plans or start a trial"},
    {"Web Summit booth", "websummit-booth", "https://www.example.com/events/web-summit", "web-summit", "events",
     "event,b2b,print", "Booth banner,Roll-up,Badge", 0.95, 1.0,
     "Booth visitors who book a demo"},
    {"Aurora lamp packaging", "aurora-lamp", "https://shop.example.com/products/aurora-lamp", "aurora-launch", "product",
     "product,packaging,print", "Box back,Manual", 0.97, 0.6, NULL},
    {"Le Petit Zinc menu", "menu-petit-zinc", "https://menu.example.com/le-petit-zinc", "menu", "partners",
     "print,hospitality", "Table tent,Window sticker", 0.99, 0.4, NULL},
    {"Business card - Claire Martin", "card-claire", "https://www.example.com/team/claire-martin", "sales-cards", "sales",
     "b2b,print", "Business card", 0.9, 1.2,
     "Prospects who open the contact card"},
    {"Newsletter - monthly issue", "newsletter", "https://blog.example.com/newsletter/latest", "newsletter", "marketing",
     "newsletter,social", "Email footer", 0.05, 1.0, NULL},
    {"Instagram bio", "insta-bio", "https://www.example.com/links", "social-bio", "marketing",
     "social", "Story sticker", 0.1, 0.8, NULL},
    {"Free trial signup", "free-trial", "https://app.example.com/signup?plan=trial", "trial", "growth",
     "pricing,product", "Flyer A5,Slide deck", 0.5, 3.0,
     "Visitors who start a free trial"},
    {"Webinar: analytics 101", "webinar-analytics", "https://www.example.com/webinars/analytics-101", "webinars", "marketing",
     "event,b2b", "Slide deck", 0.3, 1.4, NULL},
    {"Job fair poster", "careers", "https://jobs.example.com/", "hiring", "people",
     "recruiting,event,print", "Poster A1,Flyer A5", 0.9, 0.5, NULL},
    {"Warranty registration", "warranty", "https://support.example.com/warranty", "after-sales", "support",
     "product,packaging,support", "Box inside flap,Manual", 0.97, 0.3, NULL},
    {"Paris store window", "window-paris", "https://shop.example.com/stores/paris", "stores", "retail",
     "retail,print", "Window decal", 0.98, 0.9, NULL},
    {"App download", "get-the-app", "https://www.example.com/app", "app-install", "growth",
     "product,social", "Poster A2,Receipt", 0.7, 1.1, NULL},
    {"DevConf badge", "badge-devconf", "https://devconf.example.com/", "devconf", "events",
     "event", "Attendee badge", 0.95, 0.7, NULL},
    {"Customer feedback survey", "feedback", "https://forms.example.com/feedback", "nps", "support",
     "product,support", "Receipt,Delivery note", 0.85, 0.2, NULL},
    {"Podcast episode 42", "podcast-42", "https://podcast.example.com/42", "podcast", "marketing",
     "social", "Show notes", 0.1, 0.5, NULL},
    {"Times Square billboard", "billboard-nyc", "https://www.example.com/launch", "brand-launch", "marketing",
     "print,b2c", "Billboard", 0.99, 0.6, NULL},
    {"Enterprise demo request", "demo-request", "https://www.example.com/enterprise/demo", "enterprise", "sales",
     "pricing,b2b", "Brochure,Slide deck", 0.4, 2.8,
     "Companies of 200+ people that request a demo"},
    {"Acme partner referral", "partner-acme", "https://www.example.com/partners/acme", "partners", "partners",
     "partner,b2b", "Co-branded flyer", 0.6, 1.5, NULL},
    {"Reserve wine label", "wine-reserve", "https://wine.example.com/reserve", "harvest", "product",
     "product,packaging", "Bottle label", 0.99, 0.8, NULL},
    {"Museum audio guide", "audio-guide", "https://museum.example.com/guide", "audio-guide", "partners",
     "event,print", "Gallery plaque,Ticket", 0.99, 0.3, NULL},
    {"Black Friday deals", "black-friday", "https://shop.example.com/black-friday", "black-friday", "marketing",
     "pricing,retail,social", "Poster A2,Flyer A5", 0.6, 2.0, NULL},
    {"Loyalty program", "loyalty", "https://shop.example.com/loyalty", "loyalty", "retail",
     "retail,product", "Receipt,Store counter", 0.9, 1.2, NULL},
    {"Trade show brochure", "brochure", "https://www.example.com/brochure", "trade-shows", "events",
     "event,print,b2b", "Brochure back cover", 0.9, 1.1, NULL},
    {"LinkedIn campaign", "linkedin-solutions", "https://www.example.com/solutions", "abm", "marketing",
     "social,b2b", "Slide deck", 0.05, 1.8,
     "Decision makers at target accounts"},
    {"Ramen recipe card", "recipe-ramen", "https://kitchen.example.com/recipes/ramen", "recipes", "product",
     "print,product", "Recipe card", 0.97, 0.4, NULL},
    {"12 Oak Street sign", "oak-street", "https://homes.example.com/12-oak-street", "listings", "partners",
     "print", "Yard sign", 0.99, 0.6, NULL},
    {"Gym class schedule", "gym-schedule", "https://fit.example.com/schedule", "members", "partners",
     "print", "Front desk,Locker room", 0.98, 0.3, NULL},
    {"Charity run registration", "charity-run", "https://run.example.com/register", "charity-run", "events",
     "event,social", "Poster A2", 0.7, 1.3, NULL},
    {"X200 quick start", "x200-setup", "https://support.example.com/x200", "after-sales", "support",
     "product,packaging,support", "Box lid,Manual", 0.97, 0.2, NULL},
    {"Bus shelter ad", "bus-shelter", "https://www.example.com/city", "brand-launch", "marketing",
     "print,b2c", "Bus shelter panel", 0.99, 0.5, NULL},
    {"Hotel guest Wi-Fi", "hotel-wifi", "https://hotel.example.com/wifi", "guest-services", "partners",
     "hospitality,print", "Room card", 0.99, 0.2, NULL},
    {"Event check-in", "checkin", "https://tickets.example.com/checkin", "devconf", "events",
     "event", "Ticket", 0.98, 0.2, NULL},
    {"YouTube description", "yt-channel", "https://www.example.com/video", "video", "marketing",
     "social", "End card", 0.15, 0.7, NULL},
    {"20% off coupon", "coupon-20", "https://shop.example.com/coupon/20", "coupons", "marketing",
     "pricing,retail", "Receipt,Flyer A5", 0.8, 2.2, NULL},
    {"Trial extension email", "trial-extend", "https://app.example.com/extend", "trial", "growth",
     "newsletter,pricing", "Email footer", 0.03, 2.5, NULL},
    {"Press kit", "press-kit", "https://www.example.com/press", "press", "marketing",
     "b2b", "Slide deck", 0.2, 0.3, NULL},
    {"Receipt survey", "receipt-survey", "https://forms.example.com/receipt", "nps", "retail",
     "retail,support", "Receipt", 0.98, 0.2, NULL},
    {"Developer docs", "docs", "https://docs.example.com/", "developers", "product",
     "product,b2b", "Sticker", 0.2, 0.6, NULL},
};
/* clang-format on */

static const char *const tag_names[] = {
    "pricing",	  "event",   "print",	    "social",  "product",
    "packaging",  "retail",  "b2b",	    "b2c",     "newsletter",
    "recruiting", "partner", "hospitality", "support",
};

struct name {
	const char *display, *ascii; /* ascii: for e-mail addresses */
};

static const struct name first_names[] = {
    {"Claire", "claire"}, {"James", "james"},	{"Sofia", "sofia"},
    {"Liam", "liam"},	  {"Aiko", "aiko"},	{"Mateo", "mateo"},
    {"Priya", "priya"},	  {"Noah", "noah"},	{"Amara", "amara"},
    {"Lucas", "lucas"},	  {"Zoë", "zoe"},	{"Omar", "omar"},
    {"Hannah", "hannah"}, {"Ravi", "ravi"},	{"Emma", "emma"},
    {"João", "joao"},	  {"Mei", "mei"},	{"Ethan", "ethan"},
    {"Fatima", "fatima"}, {"Lukas", "lukas"},	{"Chloé", "chloe"},
    {"Daniel", "daniel"}, {"Yuki", "yuki"},	{"Isabella", "isabella"},
    {"Kwame", "kwame"},	  {"Olivia", "olivia"}, {"Min-jun", "minjun"},
    {"Léa", "lea"},	  {"Arjun", "arjun"},	{"Sara", "sara"},
    {"Tomás", "tomas"},	  {"Grace", "grace"},	{"Björn", "bjorn"},
    {"Ana", "ana"},	  {"David", "david"},	{"Nadia", "nadia"},
    {"Wei", "wei"},	  {"Julia", "julia"},	{"Samuel", "samuel"},
    {"Ingrid", "ingrid"},
};

static const struct name last_names[] = {
    {"Martin", "martin"},	{"Smith", "smith"},
    {"García", "garcia"},	{"Müller", "muller"},
    {"Tanaka", "tanaka"},	{"Rossi", "rossi"},
    {"Patel", "patel"},		{"Johnson", "johnson"},
    {"Okafor", "okafor"},	{"Dubois", "dubois"},
    {"Silva", "silva"},		{"Kim", "kim"},
    {"Nguyen", "nguyen"},	{"Schmidt", "schmidt"},
    {"Brown", "brown"},		{"López", "lopez"},
    {"Wang", "wang"},		{"Andersson", "andersson"},
    {"O'Brien", "obrien"},	{"Kowalski", "kowalski"},
    {"Sato", "sato"},		{"Moreau", "moreau"},
    {"Fernandes", "fernandes"}, {"Cohen", "cohen"},
    {"Haddad", "haddad"},	{"Novak", "novak"},
    {"Jansen", "jansen"},	{"Williams", "williams"},
    {"Sharma", "sharma"},	{"Costa", "costa"},
    {"Yilmaz", "yilmaz"},	{"Ivanova", "ivanova"},
    {"Mensah", "mensah"},	{"Park", "park"},
    {"Fischer", "fischer"},	{"Laurent", "laurent"},
};

struct company {
	const char *name, *domain, *industry;
	int employees;
};

static const struct company companies[] = {
    {"Acme Corp", "acme.example", "Manufacturing", 1200},
    {"Globex", "globex.example", "Energy", 5400},
    {"Initech", "initech.example", "Software", 350},
    {"Umbrella Retail", "umbrella-retail.example", "Retail", 8000},
    {"Northwind Traders", "northwind.example", "Wholesale", 140},
    {"Contoso", "contoso.example", "Software", 2200},
    {"Fabrikam", "fabrikam.example", "Manufacturing", 650},
    {"Tailspin Toys", "tailspin.example", "Retail", 90},
    {"Wide World Importers", "wideworld.example", "Logistics", 400},
    {"Blue Yonder Airlines", "blueyonder.example", "Travel", 3100},
    {"Litware", "litware.example", "Software", 60},
    {"Proseware", "proseware.example", "Publishing", 45},
    {"Adventure Works", "adventure-works.example", "Retail", 700},
    {"Coho Winery", "coho.example", "Food and beverage", 35},
    {"Margie's Travel", "margies.example", "Travel", 25},
    {"Lucerne Publishing", "lucerne.example", "Publishing", 180},
    {"Woodgrove Bank", "woodgrove.example", "Financial services", 9000},
    {"Alpine Ski House", "alpineski.example", "Hospitality", 120},
    {"Trey Research", "treyresearch.example", "Healthcare", 800},
    {"Southridge Video", "southridge.example", "Media", 210},
    {"Fourth Coffee", "fourthcoffee.example", "Food and beverage", 1500},
    {"Graphic Design Institute", "gdi.example", "Education", 75},
    {"Humongous Insurance", "humongous.example", "Financial services", 4200},
    {"City Power & Light", "cpandl.example", "Energy", 2600},
};

static const char *const job_titles[] = {
    "Marketing Manager",
    "Head of Growth",
    "CTO",
    "Software Engineer",
    "Product Manager",
    "Sales Director",
    "Operations Lead",
    "CEO",
    "Store Manager",
    "Brand Manager",
    "Data Analyst",
    "Event Coordinator",
    "Procurement Officer",
    "Customer Success Manager",
    "VP Marketing",
    "Founder",
    "Designer",
    "Account Executive",
    "IT Manager",
    "Chief Revenue Officer",
};

/* Where a click comes from; NULL url: no Referer (typed, an app, mail). */
struct referrer {
	const char *url, *source, *medium;
	int weight;
};

static const struct referrer referrers[] = {
    {NULL, NULL, NULL, 26},
    {"https://www.linkedin.com/", "linkedin", "social", 14},
    {"https://www.instagram.com/", "instagram", "social", 12},
    {"https://www.facebook.com/", "facebook", "social", 9},
    {"https://t.co/", "twitter", "social", 5},
    {"https://www.google.com/", NULL, NULL, 12},
    {NULL, "newsletter", "email", 12},
    {"https://www.google.com/", "google", "cpc", 5},
    {"https://www.reddit.com/", NULL, NULL, 3},
    {"https://news.ycombinator.com/", NULL, NULL, 2},
};

/* Why a redirect failed, and how long it took to find out (x median). */
struct failure {
	const char *code;
	double slowness; /* 0: the timeout */
	int weight;
};

static const struct failure failures[] = {
    {"DESTINATION_UNREACHABLE", 0.5, 40}, {"DESTINATION_TIMEOUT", 0, 25},
    {"DESTINATION_HTTP_5XX", 4, 20},	  {"TLS_HANDSHAKE_FAILED", 2, 10},
    {"WORKFLOW_STEP_FAILED", 1, 5},
};

#define REDIRECT_TIMEOUT_MS 10000

static const char *const interactions[] = {
    "EVENT_ACTION_MULTI_LINK",
    "EVENT_ACTION_SOCIAL_LINKS_PAGE",
    "EVENT_ACTION_CONTACT_CARD",
};

/* QR code looks. */
static const char *const qr_designs[] = {
    "{\"dotsType\": \"rounded\", \"foregroundColor\": \"#1B1F3B\", "
    "\"backgroundColor\": \"#FFFFFF\", \"cornersSquareType\": "
    "\"extra-rounded\"}",
    "{\"dotsType\": \"square\", \"foregroundColor\": \"#000000\", "
    "\"backgroundColor\": \"#FFFFFF\", \"cornersSquareType\": \"square\"}",
    "{\"dotsType\": \"dots\", \"foregroundColor\": \"#0B6E4F\", "
    "\"backgroundColor\": \"#F4F1DE\", \"cornersSquareType\": \"dot\", "
    "\"logo\": true}",
    "{\"dotsType\": \"classy\", \"foregroundColor\": \"#7A1E48\", "
    "\"backgroundColor\": \"#FFFFFF\", \"cornersSquareType\": "
    "\"extra-rounded\", \"logo\": true}",
};

/* ----------------------------------------------------------- randomness */

/*
 * xoshiro256** seeded through splitmix64: fast, and the same sequence on
 * every machine for the same key and stream.
 */
struct rng {
	uint64_t s[4];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
rng_init(struct rng *r, uint64_t key, uint64_t stream)
{
	uint64_t x = key ^ (stream * 0xd1342543de82ef95ULL);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1). */
static double
rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0. */
static uint64_t
rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Uniform in [lo, hi). */
static int64_t
rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo));
}

/* Standard normal (Box-Muller; the second value is dropped). */
static double
rng_normal(struct rng *r)
{
	double u = 1.0 - rng_unit(r), v = rng_unit(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* An index of table, weighted by the int member at offset off. */
static int
pick_weighted(struct rng *r, const void *table, size_t size, int n, size_t off)
{
	const char *p = table;
	int64_t total = 0, x;

	for (int i = 0; i < n; i++)
		total += *(const int *)(p + (size_t)i * size + off);
	x = (int64_t)rng_below(r, (uint64_t)total);
	for (int i = 0; i < n; i++) {
		x -= *(const int *)(p + (size_t)i * size + off);
		if (x < 0)
			return i;
	}
	return n - 1;
}

#define PICK(r, table, member)                                                 \
	pick_weighted((r), (table), sizeof((table)[0]), (int)nitems(table),    \
		      offsetof(__typeof__((table)[0]), member))

/* The first index whose cumulative weight exceeds x (cum ascending). */
static int
cum_search(const double *cum, int n, double x)
{
	int lo = 0, hi = n - 1;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (cum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Redirect latency in ms: lognormal around 45 ms with a slow tail. */
static int
latency_draw(struct rng *r, double slowness)
{
	double ms = 45.0 * exp(0.45 * rng_normal(r)) * slowness;

	if (rng_unit(r) < 0.01)
		ms += 150 + 600 * rng_unit(r);
	return (int)ms;
}

/* ------------------------------------------------------------ text out */

/* A growable byte buffer; the writers below need ROW_MAX bytes of room. */
struct buf {
	char *p;
	size_t len, cap;
};

static char *
buf_room(struct buf *b, size_t need)
{
	if (b->cap - b->len < need) {
		b->cap = b->cap * 2 + need;
		b->p = xrealloc(b->p, b->cap);
	}
	return b->p + b->len;
}

static char *
put(char *p, const char *s)
{
	return mempcpy(p, s, strlen(s));
}

/* s, or \N for NULL; s must hold no tab, newline or backslash. */
static char *
put_or_null(char *p, const char *s)
{
	return s != NULL ? put(p, s) : mempcpy(p, "\\N", 2);
}

static char *
put_tab(char *p)
{
	*p++ = '\t';
	return p;
}

static char *
put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *
put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

static char *
put_2d(char *p, int v)
{
	*p++ = (char)('0' + v / 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

/* Any text, escaped for COPY's text format (for catalogue values). */
static void
buf_text(struct buf *b, const char *s)
{
	char *p;

	if (s == NULL) {
		p = buf_room(b, 2);
		b->len = (size_t)(put_or_null(p, NULL) - b->p);
		return;
	}
	p = buf_room(b, 2 * strlen(s));
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\':
			p = mempcpy(p, "\\\\", 2);
			break;
		case '\t':
			p = mempcpy(p, "\\t", 2);
			break;
		case '\n':
			p = mempcpy(p, "\\n", 2);
			break;
		case '\r':
			p = mempcpy(p, "\\r", 2);
			break;
		default:
			*p++ = *s;
		}
	}
	b->len = (size_t)(p - b->p);
}

static void
buf_raw(struct buf *b, const char *s)
{
	char *p = buf_room(b, strlen(s));

	b->len = (size_t)(put(p, s) - b->p);
}

static void buf_fmt(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_fmt(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_room(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* "2026-05-04 03:02:01.123456+00" for microseconds since the epoch. */
static char *
put_ts(char *p, int64_t us)
{
	int64_t secs = floor_div(us, US_PER_SEC);
	int64_t frac = us - secs * US_PER_SEC;
	int64_t days = floor_div(secs, 86400);
	int sod = (int)(secs - days * 86400);
	int y, m, d;

	civil_from_days(days, &y, &m, &d);
	p = put_2d(p, y / 100 % 100);
	p = put_2d(p, y % 100);
	*p++ = '-';
	p = put_2d(p, m);
	*p++ = '-';
	p = put_2d(p, d);
	*p++ = ' ';
	p = put_2d(p, sod / 3600);
	*p++ = ':';
	p = put_2d(p, sod / 60 % 60);
	*p++ = ':';
	p = put_2d(p, sod % 60);
	*p++ = '.';
	for (int64_t div = 100000; div > 0; div /= 10)
		*p++ = (char)('0' + frac / div % 10);
	return put(p, "+00");
}

static void
format_ts(char out[40], int64_t us)
{
	*put_ts(out, us) = '\0';
}

/*
 * A UUID (version 4 layout) that only depends on key, kind and n: ids are
 * the same on every run with the same seed, and differ between kinds.
 */
enum id_kind { ID_LINK = 1, ID_TAG, ID_QR, ID_VISITOR, ID_DEVICE };

static char *
put_uuid(char *p, uint64_t key, enum id_kind kind, uint64_t n)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t x = key ^ ((uint64_t)kind << 56) ^ n, w[2];
	unsigned char b[16];

	w[0] = splitmix64(&x);
	w[1] = splitmix64(&x);
	for (int i = 0; i < 16; i++)
		b[i] = (unsigned char)(w[i / 8] >> (8 * (i % 8)));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	return p;
}

static void
format_uuid(char out[37], uint64_t key, enum id_kind kind, uint64_t n)
{
	*put_uuid(out, key, kind, n) = '\0';
}

/* "Poster A2" -> "poster-a2", in a new string. */
static char *
slugify(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *p = out;
	bool dash = false;

	for (; *s != '\0'; s++) {
		char c = *s;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (dash && p != out)
				*p++ = '-';
			*p++ = c;
			dash = false;
		} else {
			dash = true;
		}
	}
	*p = '\0';
	return out;
}

/* ---------------------------------------------------------- visit model */

/* What visit_draw needs of a link; strings hold no tab or backslash. */
struct vlink {
	const char *id, *entrypoint, *destination, *campaign;
	int nqr;
	const char *const *qr_id;      /* nqr of them */
	const char *const *qr_content; /* utm_content of each */
	double qr_share, convert;
};

/* ... and of a device. */
struct vdevice {
	enum dclass cls;
	bool identified; /* its visitor has a profile: may fill forms */
	const char *currency;
};

/* One event; NULL strings are SQL NULLs. */
struct ev {
	int64_t at;
	int qr; /* index in the link's QR codes, -1: none */
	const char *action, *dest_action, *visit_type, *method;
	const char *status, *error_code;
	int latency;   /* ms, -1: none */
	bool redirect; /* carries the link's destination */
	const char *referrer, *utm_source, *utm_medium, *utm_campaign;
	const char *utm_content;
	char props[96]; /* a JSON object */
};

#define MAX_VISIT 4 /* events of one visit */

/* A follow-up of visit v[0], delay_lo..delay_hi seconds after the last. */
static struct ev *
visit_follow(struct rng *r, struct ev *v, int *n, int64_t latest,
	     const char *action, const char *dest_action, int delay_lo,
	     int delay_hi)
{
	struct ev *e = &v[*n];

	*e = v[0];
	e->at = v[*n - 1].at +
		rng_range(r, delay_lo * US_PER_SEC, delay_hi * US_PER_SEC);
	if (e->at > latest)
		e->at = latest;
	e->action = action;
	e->dest_action = dest_action;
	e->latency = -1;
	e->redirect = false;
	strcpy(e->props, "{}");
	(*n)++;
	return e;
}

/*
 * The events of one visit of device d to link l at time at: a scan, a
 * rescan or a click, then perhaps a workflow interaction, a form and a
 * conversion, no later than latest.  p_return: how likely the visitor has
 * been here before.  Fills out[0..MAX_VISIT) and returns how many.
 */
static int
visit_draw(struct rng *r, const struct vlink *l, const struct vdevice *d,
	   int64_t at, int64_t latest, double p_return, struct ev *out)
{
	struct ev *e = &out[0];
	bool returning;
	int n = 1;

	memset(e, 0, sizeof *e);
	e->at = at;
	e->qr = -1;
	e->method = "HTTP_METHOD_GET";
	e->status = "ok";
	e->dest_action = "EVENT_ACTION_CLIENT_REDIRECT";
	e->redirect = true;
	strcpy(e->props, "{}");

	if (d->cls == DC_BOT) {
		/* Unfurlers and crawlers follow links; they scan nothing. */
		e->action = "ACTION_CLICK";
		e->visit_type = "VISIT_TYPE_UNSPECIFIED";
		e->latency = latency_draw(r, 1);
		return 1;
	}

	returning = rng_unit(r) < p_return;
	e->visit_type = returning ? "VISIT_TYPE_RETURNING" : "VISIT_TYPE_FIRST";
	if (l->nqr > 0 && d->cls != DC_DESKTOP && rng_unit(r) < l->qr_share) {
		/* The first placements are the busiest ones. */
		double x = rng_unit(r) * (l->nqr == 1 ? 1 : 1.8);

		e->qr = x < 1 || l->nqr == 1
			    ? 0
			    : 1 + (int)rng_below(r, (uint64_t)l->nqr - 1);
		e->action = returning ? "ACTION_RESCAN" : "ACTION_SCAN";
		e->utm_source = "qr";
		e->utm_medium = "offline";
		e->utm_campaign = l->campaign;
		e->utm_content = l->qr_content[e->qr];
	} else {
		const struct referrer *ref =
		    &referrers[PICK(r, referrers, weight)];

		e->action = "ACTION_CLICK";
		e->referrer = ref->url;
		e->utm_source = ref->source;
		e->utm_medium = ref->medium;
		e->utm_campaign = ref->source != NULL ? l->campaign : NULL;
	}

	if (rng_unit(r) < ERROR_VISITS) {
		const struct failure *f = &failures[PICK(r, failures, weight)];

		e->status = "error";
		e->error_code = f->code;
		e->latency = f->slowness == 0
				 ? REDIRECT_TIMEOUT_MS + (int)rng_below(r, 40)
				 : latency_draw(r, f->slowness);
		return 1;
	}
	e->latency = latency_draw(r, 1);

	if (rng_unit(r) < INTERACT_VISITS)
		visit_follow(r, out, &n, latest, "ACTION_WORKFLOW_INTERACTION",
			     interactions[rng_below(r, nitems(interactions))],
			     5, 90);
	if (d->identified && rng_unit(r) < FORM_VISITS * fmin(l->convert, 2)) {
		e = visit_follow(r, out, &n, latest, "ACTION_FORM_SUBMISSION",
				 "EVENT_ACTION_FORM_SUBMIT", 20, 300);
		e->method = "HTTP_METHOD_POST";
		snprintf(e->props, sizeof e->props, "{\"form\": \"%s\"}",
			 l->convert >= 2 ? "demo-request" : "contact");
	}
	if (rng_unit(r) <
	    CONVERT_VISITS * l->convert * (returning ? 1.5 : 1.0)) {
		double value = 60.0 * exp(0.7 * rng_normal(r));

		e = visit_follow(r, out, &n, latest, "ACTION_CONVERSION",
				 "EVENT_ACTION_THANK_YOU_PAGE", 60, 1800);
		snprintf(e->props, sizeof e->props,
			 "{\"value\": %.2f, \"currency\": \"%s\"}", value,
			 d->currency);
	}
	return n;
}

/* ------------------------------------------------------ seed: catalogue */

struct slink {
	struct vlink v;
	const struct link_tpl *tpl;
	char id[37];
	char *name, *shortlink, *entrypoint;
	int nplaces;
	char **qr_ids, **qr_names, **qr_contents;
	int64_t created;
	double share; /* of visits */
};

struct svisitor {
	float visits; /* expected over the range */
	float activity;
	uint8_t city;
	bool identified;
};

struct sdevice {
	int32_t visitor; /* -1: a crawler */
	uint8_t place;	 /* cities[], or bots[] for a crawler */
	uint8_t model;
	uint8_t isp;
	bool english; /* browses in en-US rather than the city's language */
};

struct world {
	uint64_t key; /* the seed mixed with the workspace */
	const char *ws;
	int64_t start, until, nevents;
	int nstrata;	 /* hours from start */
	int64_t *strata; /* events before each stratum; nstrata + 1 */
	double bot_mass; /* of each stratum, in the units of its city weights */

	int nlinks, nqr;
	struct slink *links;
	double *link_cum;

	int nvisitors, ndevices, nhuman; /* crawlers: [nhuman, ndevices) */
	struct svisitor *visitors;
	struct sdevice *devices;
	double city_w[NCITIES]; /* 0 where nobody lives */
	int city_first[NCITIES + 1];
	int *by_city;	 /* human devices grouped by city */
	double *dev_cum; /* cumulative weights within each group */

	/* COPY text of a device's columns (see EVENT_COLUMNS). */
	char *geo[NCITIES], *isp[NCITIES][2];
	char *model_text[nitems(models)], *bot_text[NBOTS];
};

/* A split of a comma-separated list, in new strings. */
static int
split_list(const char *s, char **out, int max)
{
	int n = 0;

	while (*s != '\0' && n < max) {
		size_t len = strcspn(s, ",");

		out[n++] = xstrndup(s, len);
		s += len;
		if (*s == ',')
			s++;
	}
	return n;
}

static int
tag_index(const char *name)
{
	for (int i = 0; i < (int)nitems(tag_names); i++) {
		if (strcmp(tag_names[i], name) == 0)
			return i;
	}
	fatal("%s: tag '%s' is not in tag_names", __func__, name);
}

static void
world_links(struct world *w, struct rng *r)
{
	int *rank = xcalloc((size_t)w->nlinks, sizeof *rank);
	double total = 0, cum = 0;

	w->links = xcalloc((size_t)w->nlinks, sizeof *w->links);
	w->link_cum = xcalloc((size_t)w->nlinks, sizeof *w->link_cum);
	for (int i = 0; i < w->nlinks; i++)
		rank[i] = i;
	for (int i = w->nlinks - 1; i > 0; i--) {
		int j = (int)rng_below(r, (uint64_t)i + 1), t = rank[i];

		rank[i] = rank[j];
		rank[j] = t;
	}
	for (int i = 0; i < w->nlinks; i++) {
		struct slink *l = &w->links[i];
		int copy = i / (int)nitems(link_tpls);

		l->tpl = &link_tpls[i % (int)nitems(link_tpls)];
		format_uuid(l->id, w->key, ID_LINK, (uint64_t)i);
		if (copy == 0) {
			l->name = xstrdup(l->tpl->name);
			l->shortlink = xstrdup(l->tpl->shortlink);
		} else {
			l->name = xprintf("%s #%d", l->tpl->name, copy + 1);
			l->shortlink =
			    xprintf("%s-%d", l->tpl->shortlink, copy + 1);
		}
		l->entrypoint =
		    xprintf("https://go.example.com/%s", l->shortlink);
		l->created =
		    w->start - rng_range(r, 7 * US_PER_DAY, 240 * US_PER_DAY);

		l->qr_names = xcalloc(4, sizeof(char *));
		l->nplaces = split_list(l->tpl->placements, l->qr_names, 4);
		l->qr_ids = xcalloc((size_t)l->nplaces, sizeof(char *));
		l->qr_contents = xcalloc((size_t)l->nplaces, sizeof(char *));
		for (int q = 0; q < l->nplaces; q++) {
			l->qr_ids[q] = xmalloc(37);
			format_uuid(l->qr_ids[q], w->key, ID_QR,
				    (uint64_t)w->nqr++);
			l->qr_contents[q] = slugify(l->qr_names[q]);
		}

		/* Zipf-like: the link of rank k gets 1/k^1.07 of the visits. */
		l->share = 1.0 / pow(rank[i] + 1, 1.07);
		total += l->share;

		l->v.id = l->id;
		l->v.entrypoint = l->entrypoint;
		l->v.destination = l->tpl->destination;
		l->v.campaign = l->tpl->campaign;
		l->v.nqr = l->nplaces;
		l->v.qr_id = (const char *const *)l->qr_ids;
		l->v.qr_content = (const char *const *)l->qr_contents;
		l->v.qr_share = l->tpl->qr_share;
		l->v.convert = l->tpl->convert;
	}
	for (int i = 0; i < w->nlinks; i++) {
		w->links[i].share /= total;
		cum += w->links[i].share;
		w->link_cum[i] = cum;
	}
	w->link_cum[w->nlinks - 1] = 1.0;
	free(rank);
}

/* How many devices a visitor uses, and each one's share of the visits. */
static const double device_shares[3][3] = {
    {1.0, 0, 0},
    {0.75, 0.25, 0},
    {0.65, 0.25, 0.10},
};

static void
world_people(struct world *w, struct rng *r)
{
	int nbots = w->nvisitors / 150, *fill;
	double activity[NCITIES] = {0}, wsum = 0, visits;

	nbots = nbots < 10 ? 10 : nbots > 500 ? 500 : nbots;
	w->visitors = xcalloc((size_t)w->nvisitors, sizeof *w->visitors);
	w->devices = xcalloc((size_t)w->nvisitors * 3 + (size_t)nbots,
			     sizeof *w->devices);
	w->dev_cum = xcalloc((size_t)w->nvisitors * 3, sizeof *w->dev_cum);

	for (int v = 0; v < w->nvisitors; v++) {
		struct svisitor *p = &w->visitors[v];
		double u = rng_unit(r);
		int n = u < 0.65 ? 1 : u < 0.93 ? 2 : 3;

		p->city = (uint8_t)PICK(r, cities, weight);
		/* Pareto (alpha 1.3): most visitors come once or twice, a
		 * few come back all the time. */
		p->activity =
		    (float)fmin(pow(1.0 - rng_unit(r), -1 / 1.3), 200);
		p->identified = rng_unit(r) < 0.45;
		activity[p->city] += p->activity;
		for (int k = 0; k < n; k++) {
			struct sdevice *d = &w->devices[w->ndevices];

			d->visitor = v;
			d->place = p->city;
			d->model =
			    (uint8_t)(k == 0 ? PICK(r, models, primary)
					     : PICK(r, models, secondary));
			d->isp = rng_unit(r) < 0.6 ? 0 : 1;
			d->english =
			    strncmp(cities[p->city].lang, "en-", 3) != 0 &&
			    rng_unit(r) < 0.08;
			w->dev_cum[w->ndevices] =
			    p->activity * device_shares[n - 1][k];
			w->ndevices++;
		}
	}
	w->nhuman = w->ndevices;
	for (int b = 0; b < nbots; b++) {
		struct sdevice *d = &w->devices[w->ndevices++];

		d->visitor = -1;
		d->place = (uint8_t)PICK(r, bots, weight);
	}

	/* Group human devices by city, with cumulative weights. */
	w->by_city = xcalloc((size_t)w->nhuman + 1, sizeof *w->by_city);
	memset(w->city_first, 0, sizeof w->city_first);
	for (int i = 0; i < w->nhuman; i++)
		w->city_first[w->devices[i].place + 1]++;
	for (int c = 0; c < NCITIES; c++)
		w->city_first[c + 1] += w->city_first[c];
	fill = xcalloc(NCITIES, sizeof *fill);
	{
		double *weight = w->dev_cum;

		w->dev_cum = xcalloc((size_t)w->nhuman + 1, sizeof *w->dev_cum);
		for (int i = 0; i < w->nhuman; i++) {
			int c = w->devices[i].place;
			int at = w->city_first[c] + fill[c]++;

			w->by_city[at] = i;
			w->dev_cum[at] = weight[i];
		}
		free(weight);
	}
	for (int c = 0; c < NCITIES; c++) {
		double cum = 0;

		for (int at = w->city_first[c]; at < w->city_first[c + 1];
		     at++) {
			cum += w->dev_cum[at];
			w->dev_cum[at] = cum;
		}
		w->city_w[c] = cum > 0 ? cities[c].weight : 0;
		wsum += w->city_w[c];
	}
	free(fill);

	/* Expected visits of each visitor, for telling first visits from
	 * returning ones without remembering who came when. */
	visits = (double)w->nevents * (1 - BOT_VISITS) /
		 ((1 - BOT_VISITS) * EVENTS_PER_VISIT + BOT_VISITS);
	for (int v = 0; v < w->nvisitors; v++) {
		struct svisitor *p = &w->visitors[v];

		p->visits = (float)(visits * w->city_w[p->city] / wsum *
				    p->activity / activity[p->city]);
	}
}

/*
 * Human visit weights of stratum h by city, cumulative in cum; returns
 * their sum.  A city gets its weight times how awake it is then (its
 * local hour and day of week), times a slow growth over the range.
 */
static double
stratum_cities(const struct world *w, int h, double *cum)
{
	int64_t mid =
	    (w->start + h * US_PER_HOUR + US_PER_HOUR / 2) / US_PER_SEC;
	double trend = 0.85 + 0.3 * (h + 0.5) / w->nstrata, total = 0;

	for (int c = 0; c < NCITIES; c++) {
		if (w->city_w[c] > 0) {
			int64_t local = mid + cities[c].utc_off * 60;
			int64_t day = floor_div(local, 86400);
			int hour = (int)((local - day * 86400) / 3600);
			int dow =
			    (int)(((day % 7) + 7 + 3) % 7); /* 0: Monday */

			total +=
			    w->city_w[c] * hourly[hour] * weekly[dow] * trend;
		}
		cum[c] = total;
	}
	return total;
}

/* How many events each hour of the range gets. */
static void
world_strata(struct world *w)
{
	double *mass = xcalloc((size_t)w->nstrata, sizeof *mass);
	double cum[NCITIES], sum = 0, acc = 0;

	for (int h = 0; h < w->nstrata; h++) {
		mass[h] = stratum_cities(w, h, cum);
		sum += mass[h];
	}
	/* Crawlers keep no hours. */
	w->bot_mass = w->nhuman > 0
			  ? BOT_VISITS / (1 - BOT_VISITS) * sum / w->nstrata
			  : 1;
	sum += w->bot_mass * w->nstrata;
	w->strata = xcalloc((size_t)w->nstrata + 1, sizeof *w->strata);
	for (int h = 0; h < w->nstrata; h++) {
		acc += mass[h] + w->bot_mass;
		w->strata[h + 1] = llround((double)w->nevents * (acc / sum));
	}
	w->strata[w->nstrata] = w->nevents;
	free(mass);
}

static void
world_texts(struct world *w)
{
	for (int c = 0; c < NCITIES; c++) {
		const struct city *ci = &cities[c];

		w->geo[c] = xprintf("%s\t%s\t%s\t%s", ci->country, ci->region,
				    ci->name, ci->tz);
		for (int k = 0; k < 2; k++)
			w->isp[c][k] =
			    xprintf("%s\t%u", ci->isp[k].name, ci->isp[k].asn);
	}
	for (size_t m = 0; m < nitems(models); m++)
		w->model_text[m] =
		    xprintf("%s\t%s\t%s", models[m].type, models[m].platform,
			    models[m].browser);
	for (int b = 0; b < NBOTS; b++) {
		const struct bot *bo = &bots[b];

		w->bot_text[b] = xprintf("%s\t%s\t%s\t%s\t%s\t%u\tDEVICE_TYPE_"
					 "UNKNOWN\t\\N\t\\N\t\\N\tt",
					 bo->country, bo->region, bo->city,
					 bo->tz, bo->isp.name, bo->isp.asn);
	}
}

static void
world_build(struct world *w)
{
	struct rng r;

	rng_init(&r, w->key, 0);
	world_links(w, &r);
	world_people(w, &r);
	world_strata(w);
	world_texts(w);
}

static void
world_free(struct world *w)
{
	for (int i = 0; w->links != NULL && i < w->nlinks; i++) {
		struct slink *l = &w->links[i];

		for (int q = 0; q < l->nplaces; q++) {
			free(l->qr_ids[q]);
			free(l->qr_names[q]);
			free(l->qr_contents[q]);
		}
		free(l->qr_ids);
		free(l->qr_names);
		free(l->qr_contents);
		free(l->name);
		free(l->shortlink);
		free(l->entrypoint);
	}
	free(w->links);
	free(w->link_cum);
	free(w->visitors);
	free(w->devices);
	free(w->by_city);
	free(w->dev_cum);
	free(w->strata);
	for (int c = 0; c < NCITIES; c++) {
		free(w->geo[c]);
		free(w->isp[c][0]);
		free(w->isp[c][1]);
	}
	for (size_t m = 0; m < nitems(models); m++)
		free(w->model_text[m]);
	for (int b = 0; b < NBOTS; b++)
		free(w->bot_text[b]);
}

/* -------------------------------------------------------- seed: events */

/* The device's columns are together, right after the link's. */
#define EVENT_COLUMNS                                                          \
	"workspace_id, occurred_at, link_id, qr_code_id, device_id, "          \
	"visitor_id, country, region, city, timezone, isp, asn, "              \
	"device_type, platform, browser, language, is_bot, action, "           \
	"destination_action, visit_type, http_method, entrypoint, "            \
	"destination, status, error_code, redirect_latency_ms, referrer, "     \
	"utm_source, utm_medium, utm_campaign, utm_content, properties"

static const char sql_copy_events[] =
    "COPY events (" EVENT_COLUMNS ") FROM STDIN";

/*
 * The per-row foreign-key checks cost a fifth of the load, and they can
 * only succeed: every row seed writes references either the workspace or
 * a catalogue row written before it in the same transaction.  So when it
 * provably changes nothing else, each transaction turns row triggers off
 * (session_replication_role, as pg_restore does) and takes the lock the
 * checks would take, FOR KEY SHARE on the workspace, once.  "Provably":
 * the role may set the parameter; the tables seed writes have no trigger
 * but the foreign keys' and the events NOTIFY one (sent by hand instead);
 * events reference only workspaces, the catalogue only workspaces and
 * catalogue rows.
 */
/* clang-format off */
static const char sql_fast_path[] =
    "WITH ev AS (SELECT relid FROM pg_partition_tree('events')), "
    "cat AS (SELECT unnest(ARRAY['tags', 'links', 'link_tags', "
    "'qr_codes', 'visitors', 'devices']::regclass[]) AS relid) "
    "SELECT (current_setting('is_superuser') = 'on' "
    "OR has_parameter_privilege('session_replication_role', 'SET')) "
    "AND NOT EXISTS (SELECT 1 FROM pg_trigger t "
    "WHERE NOT t.tgisinternal "
    "AND (t.tgrelid IN (SELECT relid FROM cat) "
    "OR (t.tgrelid IN (SELECT relid FROM ev) "
    "AND t.tgname <> 'events_notify'))) "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'f' "
    "AND ((c.conrelid IN (SELECT relid FROM ev) "
    "AND c.confrelid <> 'workspaces'::regclass) "
    "OR (c.conrelid IN (SELECT relid FROM cat) "
    "AND c.confrelid NOT IN ('workspaces'::regclass, 'tags'::regclass, "
    "'links'::regclass, 'visitors'::regclass))))";
static const char sql_fast_begin[] =
    "SET LOCAL session_replication_role = replica";
static const char sql_fast_lock[] =
    "SELECT 1 FROM workspaces WHERE id = $1 FOR KEY SHARE";
static const char sql_fast_notify[] =
    "SELECT pg_notify('linkpulse_events', '')";
/* clang-format on */

static void
row_put(const struct world *w, struct buf *b, const struct slink *l, int di,
	const struct ev *e)
{
	const struct sdevice *d = &w->devices[di];
	char *p0 = buf_room(b, ROW_MAX), *p = p0;

	p = put_tab(put(p, w->ws));
	p = put_tab(put_ts(p, e->at));
	p = put_tab(put(p, l->id));
	p = put_tab(put_or_null(p, e->qr >= 0 ? l->qr_ids[e->qr] : NULL));
	p = put_tab(put_uuid(p, w->key, ID_DEVICE, (uint64_t)di));
	if (d->visitor >= 0)
		p = put_uuid(p, w->key, ID_VISITOR, (uint64_t)d->visitor);
	else
		p = put_or_null(p, NULL);
	p = put_tab(p);
	if (d->visitor < 0) {
		p = put(p, w->bot_text[d->place]);
	} else {
		p = put_tab(put(p, w->geo[d->place]));
		p = put_tab(put(p, w->isp[d->place][d->isp]));
		p = put_tab(put(p, w->model_text[d->model]));
		p = put_tab(
		    put(p, d->english ? "en-US" : cities[d->place].lang));
		p = put(p, "f");
	}
	p = put_tab(p);
	p = put_tab(put(p, e->action));
	p = put_tab(put(p, e->dest_action));
	p = put_tab(put(p, e->visit_type));
	p = put_tab(put(p, e->method));
	p = put_tab(put(p, l->entrypoint));
	p = put_tab(put_or_null(p, e->redirect ? l->tpl->destination : NULL));
	p = put_tab(put(p, e->status));
	p = put_tab(put_or_null(p, e->error_code));
	if (e->latency >= 0)
		p = put_i64(p, e->latency);
	else
		p = put_or_null(p, NULL);
	p = put_tab(p);
	p = put_tab(put_or_null(p, e->referrer));
	p = put_tab(put_or_null(p, e->utm_source));
	p = put_tab(put_or_null(p, e->utm_medium));
	p = put_tab(put_or_null(p, e->utm_campaign));
	p = put_tab(put_or_null(p, e->utm_content));
	p = put(p, e->props);
	*p++ = '\n';
	b->len += (size_t)(p - p0);
}

/* The stratum that event number i falls in. */
static int
stratum_of(const struct world *w, int64_t i)
{
	int lo = 0, hi = w->nstrata - 1;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (w->strata[mid + 1] > i)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* A unit's events before they are written, and their order. */
struct unit {
	struct urow {
		struct ev e;
		int link, dev;
	} rows[UNIT_EVENTS];
	struct uorder {
		int64_t at;
		int row;
	} order[UNIT_EVENTS];
};

static int
uorder_cmp(const void *x, const void *y)
{
	const struct uorder *a = x, *b = y;

	if (a->at != b->at)
		return a->at < b->at ? -1 : 1;
	return a->row - b->row;
}

/*
 * Appends the COPY rows of unit k (events k * UNIT_EVENTS onwards) to b,
 * in time order: a job's rows then reach the time-ordered indexes (the
 * primary key, the link index) at their right end, where PostgreSQL
 * inserts without descending the tree.  Everything comes from the unit's
 * own random stream.
 */
static void
gen_unit(const struct world *w, int64_t k, struct unit *u, struct buf *b)
{
	int64_t i = k * UNIT_EVENTS, end = i + UNIT_EVENTS;
	int64_t range = w->until - w->start;
	int h = stratum_of(w, i), cached = -1, nv = 0, next = 0, di = 0;
	double ccum[NCITIES], hmass = 0;
	const struct slink *l = NULL;
	struct ev v[MAX_VISIT];
	struct rng r;
	int nrows = 0;

	if (end > w->nevents)
		end = w->nevents;
	rng_init(&r, w->key, 1 + (uint64_t)k);
	for (; i < end; i++) {
		if (next == nv) {
			const struct sdevice *d;
			struct vdevice vd;
			int64_t at;
			double p_return = 0;

			while (w->strata[h + 1] <= i)
				h++;
			if (h != cached) {
				hmass = stratum_cities(w, h, ccum);
				cached = h;
			}
			at = w->start + h * US_PER_HOUR +
			     (int64_t)rng_below(&r, US_PER_HOUR);
			if (at >= w->until)
				at = w->until - 1;
			if (rng_unit(&r) * (hmass + w->bot_mass) >= hmass) {
				di = w->nhuman +
				     (int)rng_below(&r, (uint64_t)(w->ndevices -
								   w->nhuman));
			} else {
				int c = cum_search(ccum, NCITIES,
						   rng_unit(&r) * hmass);
				int first = w->city_first[c];
				int n = w->city_first[c + 1] - first;
				double x =
				    rng_unit(&r) * w->dev_cum[first + n - 1];

				di = w->by_city[first +
						cum_search(w->dev_cum + first,
							   n, x)];
			}
			l = &w->links[cum_search(w->link_cum, w->nlinks,
						 rng_unit(&r))];
			d = &w->devices[di];
			if (d->visitor >= 0) {
				const struct svisitor *p =
				    &w->visitors[d->visitor];
				double seen = p->visits * l->share *
					      ((double)(at - w->start) / range +
					       PRIOR_HISTORY);

				vd.cls = models[d->model].cls;
				vd.identified = p->identified;
				vd.currency = cities[d->place].currency;
				p_return = 1.0 - exp(-seen);
			} else {
				vd.cls = DC_BOT;
				vd.identified = false;
				vd.currency = "USD";
			}
			nv = visit_draw(&r, &l->v, &vd, at, w->until - 1,
					p_return, v);
			next = 0;
		}
		u->rows[nrows].e = v[next++];
		u->rows[nrows].link = (int)(l - w->links);
		u->rows[nrows].dev = di;
		u->order[nrows].at = u->rows[nrows].e.at;
		u->order[nrows].row = nrows;
		nrows++;
	}
	qsort(u->order, (size_t)nrows, sizeof u->order[0], uorder_cmp);
	for (int q = 0; q < nrows; q++) {
		const struct urow *row = &u->rows[u->order[q].row];

		row_put(w, b, &w->links[row->link], row->dev, &row->e);
	}
}

/* ------------------------------------------------- seed: COPY plumbing */

/* Starts sql (a COPY ... FROM STDIN) on conn; false with err set. */
static bool
copy_begin(PGconn *conn, const char *sql, char *err, size_t len)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COPY_IN;

	if (!ok)
		snprintf(err, len, "%s", pq_message(conn, res));
	PQclear(res);
	return ok;
}

/* Hands b to libpq when it holds FLUSH_BYTES, or at all with force. */
static bool
copy_send(PGconn *conn, struct buf *b, bool force, char *err, size_t len)
{
	if (b->len == 0 || (!force && b->len < FLUSH_BYTES))
		return true;
	if (PQputCopyData(conn, b->p, (int)b->len) != 1) {
		snprintf(err, len, "%s", pq_message(conn, NULL));
		return false;
	}
	b->len = 0;
	return true;
}

/* Ends the COPY (aborts it when failed); false with err set. */
static bool
copy_end(PGconn *conn, bool failed, char *err, size_t len)
{
	PGresult *res;
	bool ok = true;

	if (PQputCopyEnd(conn, failed ? "seed stopped" : NULL) != 1) {
		if (!failed)
			snprintf(err, len, "%s", pq_message(conn, NULL));
		return false;
	}
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			if (ok && !failed)
				snprintf(err, len, "%s", pq_message(conn, res));
			ok = false;
		}
		PQclear(res);
	}
	return ok && !failed;
}

static bool
exec_ok(PGconn *conn, const char *sql, char *err, size_t len)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		snprintf(err, len, "%s", pq_message(conn, res));
	PQclear(res);
	return ok;
}

/* Another connection to the database of like, with the same parameters. */
static PGconn *
connect_like(PGconn *like, char *err, size_t len)
{
	PQconninfoOption *opts = PQconninfo(like);
	const char *keys[128], *vals[128];
	PGconn *conn;
	int n = 0;

	if (opts == NULL) {
		snprintf(err, len, "out of memory");
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL && n < 127; o++) {
		if (o->val != NULL && o->val[0] != '\0') {
			keys[n] = o->keyword;
			vals[n++] = o->val;
		}
	}
	keys[n] = vals[n] = NULL;
	conn = PQconnectdbParams(keys, vals, 0);
	PQconninfoFree(opts);
	if (PQstatus(conn) != CONNECTION_OK ||
	    PQsetClientEncoding(conn, "UTF8") != 0) {
		snprintf(err, len, "%s", pq_message(conn, NULL));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* --------------------------------------------- seed: catalogue as COPY */

/* Writes the catalogue's rows into the COPY in progress on conn. */
struct cat {
	const struct world *w;
	PGconn *conn;
	struct buf b;
	struct rng r;
	bool failed;
	char err[512];
};

/* After each row: hands the buffer to libpq once it is large. */
static void
cat_flush(struct cat *c)
{
	if (!c->failed &&
	    !copy_send(c->conn, &c->b, false, c->err, sizeof c->err))
		c->failed = true;
	if (c->failed)
		c->b.len = 0;
}

static bool
cat_table(struct cat *c, const char *sql, void (*rows)(struct cat *))
{
	if (!copy_begin(c->conn, sql, c->err, sizeof c->err))
		return false;
	c->b.len = 0;
	rows(c);
	if (c->failed ||
	    !copy_send(c->conn, &c->b, true, c->err, sizeof c->err)) {
		copy_end(c->conn, true, c->err, sizeof c->err);
		return false;
	}
	return copy_end(c->conn, false, c->err, sizeof c->err);
}

static void
cat_field(struct cat *c, const char *s)
{
	buf_text(&c->b, s);
	buf_raw(&c->b, "\t");
}

/* A timestamp column; last ends the row. */
static void
cat_ts(struct cat *c, int64_t us, bool last)
{
	char ts[40];

	format_ts(ts, us);
	buf_raw(&c->b, ts);
	buf_raw(&c->b, last ? "\n" : "\t");
	if (last)
		cat_flush(c);
}

static void
cat_uuid(struct cat *c, enum id_kind kind, uint64_t n)
{
	char id[37];

	format_uuid(id, c->w->key, kind, n);
	cat_field(c, id);
}

/* Rows of tags used by some link. */
static void
cat_tags(struct cat *c)
{
	const struct world *w = c->w;
	bool used[nitems(tag_names)] = {false};

	for (int i = 0; i < w->nlinks && i < (int)nitems(link_tpls); i++) {
		char *t[8];
		int n = split_list(w->links[i].tpl->tags, t, 8);

		for (int k = 0; k < n; k++) {
			used[tag_index(t[k])] = true;
			free(t[k]);
		}
	}
	for (int i = 0; i < (int)nitems(tag_names); i++) {
		if (!used[i])
			continue;
		cat_field(c, w->ws);
		cat_uuid(c, ID_TAG, (uint64_t)i);
		cat_field(c, tag_names[i]);
		cat_ts(c, w->start - 300 * US_PER_DAY, false);
		cat_ts(c, w->start - 300 * US_PER_DAY, true);
	}
}

static void
cat_links(struct cat *c)
{
	const struct world *w = c->w;

	for (int i = 0; i < w->nlinks; i++) {
		const struct slink *l = &w->links[i];
		const struct link_tpl *t = l->tpl;

		cat_field(c, w->ws);
		cat_field(c, l->id);
		cat_field(c, l->shortlink);
		cat_field(c, l->entrypoint);
		cat_field(c, l->name);
		cat_field(c, t->destination);
		cat_field(c, t->goal);
		cat_field(c, t->goal != NULL
				 ? "Decision makers at companies that match "
				   "our customer profile"
				 : NULL);
		buf_fmt(&c->b, "{\"campaign\": \"%s\", \"team\": \"%s\"}\t",
			t->campaign, t->team);
		cat_ts(c, l->created, false);
		cat_ts(c, l->created, true);
	}
}

static void
cat_link_tags(struct cat *c)
{
	const struct world *w = c->w;

	for (int i = 0; i < w->nlinks; i++) {
		const struct slink *l = &w->links[i];
		char *t[8];
		int n = split_list(l->tpl->tags, t, 8);

		for (int k = 0; k < n; k++) {
			cat_field(c, w->ws);
			cat_field(c, l->id);
			cat_uuid(c, ID_TAG, (uint64_t)tag_index(t[k]));
			cat_ts(c, l->created, true);
			free(t[k]);
		}
	}
}

static void
cat_qr_codes(struct cat *c)
{
	static const char *const formats[] = {
	    "OUTPUT_FILE_FORMAT_PNG", "OUTPUT_FILE_FORMAT_PNG",
	    "OUTPUT_FILE_FORMAT_SVG", "OUTPUT_FILE_FORMAT_WEBP"};
	static const char *const levels[] = {"M", "M", "Q", "H"};
	const struct world *w = c->w;

	for (int i = 0; i < w->nlinks; i++) {
		const struct slink *l = &w->links[i];

		for (int q = 0; q < l->nplaces; q++) {
			int size = 512 << rng_below(&c->r, 3);
			int64_t at = l->created + rng_range(&c->r, US_PER_HOUR,
							    7 * US_PER_DAY);

			cat_field(c, w->ws);
			cat_field(c, l->qr_ids[q]);
			cat_field(c, l->id);
			cat_field(c, l->qr_names[q]);
			cat_field(c, rng_unit(&c->r) < 0.8 ? "SHAPE_SQUARE"
							   : "SHAPE_CIRCLE");
			cat_field(c, formats[rng_below(&c->r, 4)]);
			cat_field(c, levels[rng_below(&c->r, 4)]);
			buf_fmt(&c->b, "%d\t%d\t", size, size);
			cat_field(
			    c,
			    qr_designs[rng_below(&c->r, nitems(qr_designs))]);
			cat_ts(c, at < w->start ? at : w->start - 1, false);
			cat_ts(c, at < w->start ? at : w->start - 1, true);
		}
	}
}

/* A visitor's creation time: before the range, so before its events. */
static int64_t
visitor_created(const struct world *w, int v)
{
	uint64_t x = w->key ^ 0x76697369746f72ULL ^ (uint64_t)v;

	return w->start - US_PER_HOUR -
	       (int64_t)(splitmix64(&x) % (uint64_t)(400 * US_PER_DAY));
}

static void
cat_visitors(struct cat *c)
{
	static const char *const plans[] = {"free", "free", "free",
					    "pro",  "pro",  "enterprise"};
	const struct world *w = c->w;
	char s[160], date[40];

	for (int v = 0; v < w->nvisitors; v++) {
		const struct svisitor *p = &w->visitors[v];
		int64_t created = visitor_created(w, v);
		const struct name *fn, *ln;
		const struct company *co = NULL;

		cat_field(c, w->ws);
		cat_uuid(c, ID_VISITOR, (uint64_t)v);
		if (!p->identified) {
			buf_raw(&c->b,
				"\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t{}\t");
			cat_ts(c, created, false);
			cat_ts(c, created, true);
			continue;
		}
		fn = &first_names[rng_below(&c->r, nitems(first_names))];
		ln = &last_names[rng_below(&c->r, nitems(last_names))];
		if (rng_unit(&c->r) < 0.75)
			co = &companies[rng_below(&c->r, nitems(companies))];
		if (rng_unit(&c->r) < 0.6) {
			snprintf(s, sizeof s, "crm-%07d", v);
			cat_field(c, s);
		} else {
			cat_field(c, NULL);
		}
		if (co != NULL)
			snprintf(s, sizeof s, "%s.%s@%s", fn->ascii, ln->ascii,
				 co->domain);
		else
			snprintf(s, sizeof s, "%s.%s%d@mail.example", fn->ascii,
				 ln->ascii, v % 1000);
		cat_field(c, s);
		cat_field(c, fn->display);
		cat_field(c, ln->display);
		if (rng_unit(&c->r) < 0.35) {
			snprintf(s, sizeof s, "+1555%07d", v % 10000000);
			cat_field(c, s);
		} else {
			cat_field(c, NULL);
		}
		cat_field(c, co != NULL ? co->name : NULL);
		cat_field(c,
			  co != NULL
			      ? job_titles[rng_below(&c->r, nitems(job_titles))]
			      : NULL);

		/* attributes: key -> {type, value as a string} */
		format_ts(date, created);
		buf_fmt(
		    &c->b,
		    "{\"plan\": {\"type\": \"VISITOR_ATTRIBUTE_TYPE_ENUM\", "
		    "\"value\": \"%s\"}, \"newsletter\": {\"type\": "
		    "\"VISITOR_ATTRIBUTE_TYPE_BOOLEAN\", \"value\": "
		    "\"%s\"}, \"signupDate\": {\"type\": "
		    "\"VISITOR_ATTRIBUTE_TYPE_DATE\", \"value\": "
		    "\"%.10sT00:00:00Z\"}",
		    plans[rng_below(&c->r, nitems(plans))],
		    rng_unit(&c->r) < 0.4 ? "true" : "false", date);
		if (co != NULL)
			buf_fmt(&c->b,
				", \"industry\": {\"type\": "
				"\"VISITOR_ATTRIBUTE_TYPE_STRING\", \"value\": "
				"\"%s\"}, \"companySize\": {\"type\": "
				"\"VISITOR_ATTRIBUTE_TYPE_NUMBER\", \"value\": "
				"\"%d\"}",
				co->industry, co->employees);
		buf_raw(&c->b, "}\t");
		cat_ts(c, created, false);
		cat_ts(c, created, true);
	}
}

/* Addresses from the documentation ranges (RFC 5737, RFC 3849). */
static void
cat_ip(struct cat *c, bool crawler)
{
	static const char *const nets[] = {"192.0.2", "198.51.100",
					   "203.0.113"};

	if (!crawler && rng_unit(&c->r) < 0.3)
		buf_fmt(&c->b, "2001:db8:%x:%x::%x\t",
			(unsigned)rng_below(&c->r, 0x10000),
			(unsigned)rng_below(&c->r, 0x10000),
			(unsigned)rng_below(&c->r, 0xffff) + 1);
	else
		buf_fmt(&c->b, "%s.%u\t",
			nets[crawler ? 0 : 1 + rng_below(&c->r, 2)],
			1 + (unsigned)rng_below(&c->r, 254));
}

static void
cat_devices(struct cat *c)
{
	const struct world *w = c->w;

	for (int i = 0; i < w->ndevices; i++) {
		const struct sdevice *d = &w->devices[i];
		int64_t created;

		cat_field(c, w->ws);
		cat_uuid(c, ID_DEVICE, (uint64_t)i);
		if (d->visitor < 0) {
			const struct bot *b = &bots[d->place];

			created = w->start -
				  rng_range(&c->r, US_PER_DAY, 90 * US_PER_DAY);
			buf_raw(&c->b, "\\N\t");
			cat_ip(c, true);
			cat_field(c, b->country);
			cat_field(c, b->region);
			cat_field(c, b->state);
			cat_field(c, b->city);
			cat_field(c, b->tz);
			cat_field(c, b->isp.name);
			buf_fmt(&c->b, "%u\t", b->isp.asn);
			buf_raw(&c->b,
				"DEVICE_TYPE_UNKNOWN\t\\N\t\\N\t\\N\t\\N\t"
				"\\N\t\\N\t\\N\t");
			cat_field(c, b->ua);
			cat_field(c, "DEVICE_ACTOR_BOT");
			cat_field(c, b->name);
			cat_field(c, b->origin);
			buf_raw(&c->b, "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t");
		} else {
			const struct city *ci = &cities[d->place];
			const struct model *m = &models[d->model];
			bool safari = strcmp(m->browser, "Safari") == 0;

			created = visitor_created(w, d->visitor) +
				  rng_range(&c->r, 0, US_PER_HOUR);
			cat_uuid(c, ID_VISITOR, (uint64_t)d->visitor);
			cat_ip(c, false);
			cat_field(c, ci->country);
			cat_field(c, ci->region);
			cat_field(c, ci->state);
			cat_field(c, ci->name);
			cat_field(c, ci->tz);
			cat_field(c, ci->isp[d->isp].name);
			buf_fmt(&c->b, "%u\t", ci->isp[d->isp].asn);
			cat_field(c, m->type);
			cat_field(c, m->name);
			cat_field(c, m->brand);
			cat_field(c, m->platform);
			cat_field(c, m->pver);
			cat_field(c, m->browser);
			cat_field(c, m->bver);
			cat_field(c, d->english ? "en-US" : ci->lang);
			cat_field(c, m->ua);
			cat_field(c, "DEVICE_ACTOR_HUMAN");
			buf_raw(&c->b, "\\N\t\\N\t");
			/* Safari reports neither memory nor network. */
			if (safari)
				buf_raw(&c->b, "\\N\t");
			else
				buf_fmt(&c->b, "%g\t", m->memory);
			buf_fmt(&c->b, "%d\t%d\t%d\t%.2f\t%s\t", m->cores,
				m->width, m->height,
				(double)m->width / m->height,
				m->cls == DC_DESKTOP ? "f" : "t");
			if (safari)
				buf_raw(&c->b, "\\N\t");
			else
				cat_field(c, m->cls == DC_DESKTOP ? "ethernet"
					     : rng_unit(&c->r) < 0.55
						 ? "wifi"
						 : "cellular");
		}
		cat_ts(c, created, false);
		cat_ts(c, created, true);
	}
}

/*
 * In the order the foreign keys need.  analyze: a later table's foreign
 * key points here.  Those keys are checked row by row against rows this
 * transaction just wrote; statistics from before may say the table is
 * empty (a workspace was deleted since), and then the planner checks each
 * key with an index that does not lead with it, reading every row of the
 * workspace every time.  ANALYZE in the transaction counts its own rows.
 */
static const struct {
	const char *sql;
	void (*rows)(struct cat *);
	const char *analyze;
} cat_tables[] = {
    {"COPY tags (workspace_id, id, name, created_at, updated_at) "
     "FROM STDIN",
     cat_tags, "ANALYZE tags"},
    {"COPY links (workspace_id, id, shortlink, entrypoint, name, "
     "destination, lead_goal_definition, lead_target_definition, metadata, "
     "created_at, updated_at) FROM STDIN",
     cat_links, "ANALYZE links"},
    {"COPY link_tags (workspace_id, link_id, tag_id, created_at) FROM STDIN",
     cat_link_tags, NULL},
    {"COPY qr_codes (workspace_id, id, link_id, name, shape, "
     "output_file_format, error_correction_level, width, height, design, "
     "created_at, updated_at) FROM STDIN",
     cat_qr_codes, NULL},
    {"COPY visitors (workspace_id, id, external_id, email, first_name, "
     "last_name, phone, company, job_title, attributes, created_at, "
     "updated_at) FROM STDIN",
     cat_visitors, "ANALYZE visitors"},
    {"COPY devices (workspace_id, id, visitor_id, ip_address, country, "
     "region, state, city, timezone, isp, asn, device_type, device_name, "
     "device_brand, platform_name, platform_version, browser_name, "
     "browser_version, browser_language, user_agent, device_actor, "
     "device_actor_name, device_actor_origin, device_memory, "
     "device_concurrency, screen_width, screen_height, screen_ratio, "
     "touch_screen, network_connection, created_at, updated_at) FROM STDIN",
     cat_devices, NULL},
};

/* ANALYZE wants the owner (else it warns and does nothing). */
static const char sql_may_analyze[] =
    "SELECT bool_and(pg_has_role(c.relowner, 'USAGE')) FROM pg_class c "
    "WHERE c.oid IN ('tags'::regclass, 'links'::regclass, "
    "'visitors'::regclass)";

/*
 * The catalogue, in the transaction open on conn; checked: its foreign
 * keys are checked row by row.  False with err set.
 */
static bool
catalogue_copy(const struct world *w, PGconn *conn, bool checked, char *err,
	       size_t len)
{
	struct cat c = {.w = w, .conn = conn};
	bool analyze = false, ok = true;

	if (checked) {
		PGresult *res = PQexec(conn, sql_may_analyze);

		analyze = PQresultStatus(res) == PGRES_TUPLES_OK &&
			  strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
	}
	rng_init(&c.r, w->key, UINT64_MAX);
	for (size_t i = 0; ok && i < nitems(cat_tables); i++) {
		ok = cat_table(&c, cat_tables[i].sql, cat_tables[i].rows);
		if (ok && analyze && cat_tables[i].analyze != NULL)
			ok = exec_ok(conn, cat_tables[i].analyze, c.err,
				     sizeof c.err);
	}
	if (!ok)
		snprintf(err, len, "%s", c.err);
	free(c.b.p);
	return ok;
}

/* ---------------------------------------------------------- seed: jobs */

/* One COPY of events on its own connection and thread. */
struct job {
	const struct world *w;
	bool fast; /* row triggers off, see sql_fast_path */
	PGconn *conn;
	int64_t first, end; /* units */
	atomic_bool *failed;
	bool ok;
	char err[512];
	pthread_t thread;
};

static void *
job_run(void *arg)
{
	struct job *j = arg;
	struct unit *u = xmalloc(sizeof *u);
	struct buf b = {0};
	bool ok = true;

	for (int64_t k = j->first; ok && k < j->end; k++) {
		if (atomic_load(j->failed))
			break;
		gen_unit(j->w, k, u, &b);
		ok = copy_send(j->conn, &b, false, j->err, sizeof j->err);
	}
	if (atomic_load(j->failed))
		ok = false;
	else if (ok)
		ok = copy_send(j->conn, &b, true, j->err, sizeof j->err);
	j->ok = copy_end(j->conn, !ok, j->err, sizeof j->err);
	if (j->ok && j->fast) {
		PGresult *res = PQexec(j->conn, sql_fast_notify);

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(j->err, sizeof j->err, "%s",
				 pq_message(j->conn, res));
			j->ok = false;
		}
		PQclear(res);
	}
	if (!j->ok)
		atomic_store(j->failed, true);
	free(b.p);
	free(u);
	return NULL;
}

/* Row triggers off, the workspace locked instead; false with err set. */
static bool
fast_begin(PGconn *conn, const char *wsid, char *err, size_t len)
{
	const char *p[1] = {wsid};
	PGresult *res;
	bool ok;

	if (!exec_ok(conn, sql_fast_begin, err, len))
		return false;
	res = PQexecParams(conn, sql_fast_lock, 1, NULL, p, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	if (!ok)
		snprintf(err, len, "locking the workspace: %s",
			 PQresultStatus(res) == PGRES_TUPLES_OK
			     ? "it was deleted"
			     : pq_message(conn, res));
	PQclear(res);
	return ok;
}

/* Whether seed may take sql_fast_path's shortcut; false on any doubt. */
static bool
seed_fast_path(struct ctl *ctl)
{
	PGresult *res = exec_params(ctl, sql_fast_path, 0, NULL);
	bool fast = PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1 &&
		    strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	return fast;
}

/* ------------------------------------------------------ seed: command */

/* clang-format off */
static const char sql_until[] =
    "SELECT (extract(epoch FROM coalesce($1::timestamptz, now()))"
    " * 1000000)::int8";
/* $3: days of events; a new workspace keeps them all. */
static const char sql_seed_workspace_create[] =
    "INSERT INTO workspaces (slug, name, plan, timezone, retention_days) "
    "VALUES ($1, $2, 'pro', 'UTC', greatest(395, $3::int + 30)) "
    "ON CONFLICT (slug) DO NOTHING RETURNING id";
static const char sql_seed_workspace[] =
    "SELECT w.id, w.retention_days, "
    "(SELECT count(*) FROM links l WHERE l.workspace_id = w.id) "
    "FROM workspaces w WHERE w.slug = $1";
static const char sql_seed_partitions[] =
    "SELECT lp_ensure_event_partitions($1::timestamptz, $2::timestamptz)";
static const char sql_seed_forget[] =
    "DELETE FROM workspaces WHERE id = $1";
/* clang-format on */

struct seed_opts {
	const char *slug;
	int64_t events, days, links, visitors, jobs;
	uint64_t seed;
	bool seed_given;
	const char *until;
};

/* A whole number in [min, max]; false after reporting a usage error. */
static bool
parse_count(const struct ctl_cmd *cmd, const char *opt, const char *s,
	    int64_t min, int64_t max, int64_t *out, int *rc)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		*rc = usage_error(cmd,
				  "invalid --%s '%s' (a whole number from "
				  "%" PRId64 " to %" PRId64 ")",
				  opt, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

static bool
parse_seed(const struct ctl_cmd *cmd, const char *s, uint64_t *out, int *rc)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    s[0] == '+' || s[0] == ' ') {
		*rc = usage_error(cmd,
				  "invalid --seed '%s' (a whole number from "
				  "0 to %" PRIu64 ")",
				  s, UINT64_MAX);
		return false;
	}
	return true;
}

/* A random seed that prints short enough to type. */
static uint64_t
seed_random(void)
{
	uint64_t s;

	random_bytes(&s, sizeof s);
	return s % 1000000000ULL;
}

static int
seed_parse(const struct ctl_cmd *cmd, const struct ctl_args *a,
	   struct seed_opts *o)
{
	const char *v;
	int rc = -1;

	memset(o, 0, sizeof *o);
	o->slug = arg_get(cmd, a, "workspace");
	o->until = arg_get(cmd, a, "until");
	if (!slug_valid(o->slug))
		return usage_error(cmd,
				   "invalid --workspace '%s': 2 to 63 "
				   "characters, a-z, 0-9 and '-', not "
				   "starting with '-'",
				   o->slug);
	if (!parse_count(cmd, "events", arg_get(cmd, a, "events"), 0,
			 MAX_EVENTS, &o->events, &rc))
		return rc;
	o->days = 30;
	if ((v = arg_get(cmd, a, "days")) != NULL &&
	    !parse_count(cmd, "days", v, 1, MAX_DAYS, &o->days, &rc))
		return rc;
	o->links = 40;
	if ((v = arg_get(cmd, a, "links")) != NULL &&
	    !parse_count(cmd, "links", v, 1, MAX_LINKS, &o->links, &rc))
		return rc;
	o->visitors = o->events / 15;
	o->visitors = o->visitors < 100	     ? 100
		      : o->visitors > 100000 ? 100000
					     : o->visitors;
	if ((v = arg_get(cmd, a, "visitors")) != NULL &&
	    !parse_count(cmd, "visitors", v, 1, MAX_VISITORS, &o->visitors,
			 &rc))
		return rc;
	o->jobs = 2;
	if ((v = arg_get(cmd, a, "jobs")) != NULL &&
	    !parse_count(cmd, "jobs", v, 1, MAX_JOBS, &o->jobs, &rc))
		return rc;
	if ((v = arg_get(cmd, a, "seed")) != NULL) {
		if (!parse_seed(cmd, v, &o->seed, &rc))
			return rc;
		o->seed_given = true;
	} else {
		o->seed = seed_random();
	}
	return -1;
}

/* "bench-seed" -> "Bench Seed", in a new string. */
static char *
title_from_slug(const char *slug)
{
	char *s = xstrdup(slug);
	bool start = true;

	for (char *p = s; *p != '\0'; p++) {
		if (*p == '-') {
			*p = ' ';
			start = true;
		} else if (start && *p >= 'a' && *p <= 'z') {
			*p = (char)(*p - 'a' + 'A');
			start = false;
		} else {
			start = false;
		}
	}
	return s;
}

/*
 * Finds the workspace or creates it; refuses one that has links already or
 * keeps events for fewer days than asked.  Returns -1 with *id (a new
 * string) and *created set, else the exit status after reporting why.
 */
static int
seed_workspace(struct ctl *ctl, const struct seed_opts *o, char **id,
	       bool *created)
{
	char days[24], *name = title_from_slug(o->slug);
	const char *p[3] = {o->slug, name, days};
	PGresult *res;
	int rc = -1;

	*id = NULL;
	snprintf(days, sizeof days, "%" PRId64, o->days);
	res = exec_params(ctl, sql_seed_workspace_create, 3, p);
	free(name);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = query_error(ctl, "creating the workspace", res);
		PQclear(res);
		return rc;
	}
	*created = PQntuples(res) == 1;
	PQclear(res);

	res = exec_params(ctl, sql_seed_workspace, 1, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = query_error(ctl, "looking up the workspace", res);
	} else if (strcmp(PQgetvalue(res, 0, 2), "0") != 0) {
		rc =
		    ctl_error("workspace '%s' has %s links already: seed fills "
			      "an empty workspace (pick another --workspace)",
			      o->slug, PQgetvalue(res, 0, 2));
	} else if (atoll(PQgetvalue(res, 0, 1)) < o->days) {
		rc = ctl_error("workspace '%s' keeps events for %s days, fewer "
			       "than --days %" PRId64,
			       o->slug, PQgetvalue(res, 0, 1), o->days);
	} else {
		*id = xstrdup(PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return rc;
}

/* Sets w's range from --until and --days; -1, or the exit status. */
static int
seed_range(struct ctl *ctl, const struct ctl_cmd *cmd,
	   const struct seed_opts *o, struct world *w)
{
	const char *p[1] = {o->until};
	char from[40], to[40];
	const char *q[2] = {from, to};
	PGresult *res;
	int rc = -1;

	res = exec_params(ctl, sql_until, 1, p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		rc = o->until != NULL
			 ? usage_error(cmd, "invalid --until '%s': %s",
				       o->until, pq_message(ctl->conn, res))
			 : query_error(ctl, "reading the time", res);
		PQclear(res);
		return rc;
	}
	w->until = atoll(PQgetvalue(res, 0, 0));
	w->start = w->until - o->days * US_PER_DAY;
	w->nstrata = (int)(o->days * 24);
	PQclear(res);

	format_ts(from, w->start);
	format_ts(to, w->until);
	res = exec_params(ctl, sql_seed_partitions, 2, q);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = query_error(ctl, "creating the event partitions", res);
	PQclear(res);
	return rc;
}

/* The seed mixed with the workspace's slug, so two workspaces differ. */
static uint64_t
seed_key(uint64_t seed, const char *slug)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *s = slug; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return seed ^ h;
}

int
cmd_seed(struct ctl *ctl, const struct ctl_cmd *cmd, const struct ctl_args *a)
{
	struct seed_opts o;
	struct world w = {0};
	struct job *jobs = NULL;
	atomic_bool failed = false;
	char *wsid = NULL, err[512] = "", from[40], to[40];
	bool created = false, cat_ok, committed = false, fast;
	int64_t nunits;
	double t0, secs;
	int rc, started = 0, ncommitted = 0;

	if ((rc = seed_parse(cmd, a, &o)) >= 0)
		return rc;
	if ((rc = ctl_connect(ctl, true)) >= 0)
		return rc;
	if (PQsetClientEncoding(ctl->conn, "UTF8") != 0)
		return ctl_error("%s", pq_message(ctl->conn, NULL));
	if ((rc = seed_range(ctl, cmd, &o, &w)) >= 0)
		return rc;
	if ((rc = seed_workspace(ctl, &o, &wsid, &created)) >= 0)
		return rc;

	fast = seed_fast_path(ctl);
	w.key = seed_key(o.seed, o.slug);
	w.ws = wsid;
	w.nevents = o.events;
	w.nlinks = (int)o.links;
	w.nvisitors = (int)o.visitors;
	world_build(&w);
	format_ts(from, w.start);
	format_ts(to, w.until);
	fprintf(stderr,
		"seed %" PRIu64 "%s: workspace %s%s, %d links, %d QR codes, "
		"%d visitors, %d devices; events from %.19s to %.19s UTC\n",
		o.seed,
		o.seed_given ? "" : " (chosen at random; --seed repeats it)",
		o.slug, created ? " (created)" : "", w.nlinks, w.nqr,
		w.nvisitors, w.ndevices, from, to);
	fprintf(stderr, "loading with COPY over %" PRId64 " connections; %s\n",
		o.jobs,
		fast ? "row triggers off, the workspace locked once in each "
		       "transaction"
		     : "foreign keys checked on every row");

	t0 = mono_sec();
	nunits = (w.nevents + UNIT_EVENTS - 1) / UNIT_EVENTS;
	jobs = xcalloc((size_t)o.jobs, sizeof *jobs);
	for (int i = 0; i < o.jobs; i++) {
		struct job *j = &jobs[i];

		j->w = &w;
		j->failed = &failed;
		/* Each job takes a run of units, so that its rows arrive in
		 * time order and the jobs write to different index pages. */
		j->first = nunits * i / o.jobs;
		j->end = nunits * (i + 1) / o.jobs;
		j->fast = fast;
		if ((j->conn = connect_like(ctl->conn, j->err,
					    sizeof j->err)) == NULL ||
		    !exec_ok(j->conn, "BEGIN", j->err, sizeof j->err) ||
		    (fast &&
		     !fast_begin(j->conn, wsid, j->err, sizeof j->err)) ||
		    !copy_begin(j->conn, sql_copy_events, j->err,
				sizeof j->err)) {
			snprintf(err, sizeof err, "%s", j->err);
			break;
		}
		if (pthread_create(&j->thread, NULL, job_run, j) != 0) {
			snprintf(err, sizeof err, "cannot start a thread: %s",
				 strerror(errno));
			copy_end(j->conn, true, j->err, sizeof j->err);
			break;
		}
		started++;
	}
	if (err[0] != '\0')
		atomic_store(&failed, true);

	/* The catalogue meanwhile, on the first connection. */
	cat_ok = err[0] == '\0' &&
		 exec_ok(ctl->conn, "BEGIN", err, sizeof err) &&
		 (!fast || fast_begin(ctl->conn, wsid, err, sizeof err)) &&
		 catalogue_copy(&w, ctl->conn, !fast, err, sizeof err);
	if (!cat_ok)
		atomic_store(&failed, true);
	for (int i = 0; i < started; i++) {
		pthread_join(jobs[i].thread, NULL);
		if (!jobs[i].ok && err[0] == '\0' && jobs[i].err[0] != '\0')
			snprintf(err, sizeof err, "%s", jobs[i].err);
	}

	/* The catalogue first: the pipeline looks an event's link up. */
	if (!atomic_load(&failed) && started == o.jobs)
		committed = exec_ok(ctl->conn, "COMMIT", err, sizeof err);
	for (int i = 0; i < o.jobs; i++) {
		if (jobs[i].conn == NULL)
			continue;
		if (committed &&
		    exec_ok(jobs[i].conn, "COMMIT", err, sizeof err))
			ncommitted++;
		PQfinish(jobs[i].conn);
	}
	secs = mono_sec() - t0;

	if (committed && ncommitted == o.jobs) {
		fprintf(stderr,
			"seeded %" PRId64 " events in %.2f s (%.0f events/s)\n",
			w.nevents, secs,
			secs > 0 ? (double)w.nevents / secs : 0.0);
		rc = EXIT_OK;
	} else if (committed) {
		rc = ctl_error("seeding workspace '%s': %s; the catalogue and "
			       "%d of %" PRId64 " event streams were "
			       "committed, so it holds some of the events",
			       o.slug, err, ncommitted, o.jobs);
	} else {
		PGresult *res;
		const char *p[1] = {wsid};

		rc = ctl_error("seeding workspace '%s': %s", o.slug,
			       err[0] != '\0' ? err : "stopped");
		if (PQtransactionStatus(ctl->conn) != PQTRANS_IDLE)
			PQclear(PQexec(ctl->conn, "ROLLBACK"));
		if (created) {
			res = exec_params(ctl, sql_seed_forget, 1, p);
			PQclear(res);
		}
	}
	free(jobs);
	world_free(&w);
	free(wsid);
	return rc;
}

/* ------------------------------------------------------------ simulate */

/* clang-format off */
static const char sql_sim_links[] =
    "SELECT id, shortlink, entrypoint, destination, "
    "coalesce(metadata->>'campaign', shortlink) "
    "FROM links WHERE workspace_id = $1 "
    "ORDER BY event_count DESC, created_at, shortlink";
static const char sql_sim_qr_codes[] =
    "SELECT link_id, id, coalesce(name, '') FROM qr_codes "
    "WHERE workspace_id = $1 ORDER BY link_id, created_at, id";
static const char sql_sim_devices[] =
    "SELECT d.id, d.device_type, "
    "d.device_actor IN ('DEVICE_ACTOR_BOT', 'DEVICE_ACTOR_AGENT'), "
    "v.email IS NOT NULL, coalesce(d.country, '') "
    "FROM devices d LEFT JOIN visitors v "
    "ON v.workspace_id = d.workspace_id AND v.id = d.visitor_id "
    "WHERE d.workspace_id = $1 ORDER BY d.id";
static const char sql_sim_partitions[] =
    "SELECT lp_ensure_event_partitions(now() - interval '1 hour', "
    "now() + interval '2 days')";
/*
 * One statement per tick (or per ROWS_PER_INSERT rows): the device's
 * columns are copied from the devices table, and the time is the
 * server's, ago microseconds back.
 */
static const char sql_sim_insert_head[] =
    "INSERT INTO events (" EVENT_COLUMNS ") "
    "SELECT d.workspace_id, now() - v.ago * interval '1 microsecond', "
    "v.link, v.qr, d.id, d.visitor_id, d.country, d.region, d.city, "
    "d.timezone, d.isp, d.asn, d.device_type, d.platform_name, "
    "d.browser_name, d.browser_language, "
    "d.device_actor IN ('DEVICE_ACTOR_BOT', 'DEVICE_ACTOR_AGENT'), "
    "v.action, v.dest_action, v.visit_type, v.method, v.entrypoint, "
    "v.destination, v.status, v.error_code, v.latency, v.referrer, "
    "v.utm_source, v.utm_medium, v.utm_campaign, v.utm_content, v.props "
    "FROM (VALUES ";
static const char sql_sim_insert_tail[] =
    ") AS v (ago, link, qr, device, action, dest_action, visit_type, "
    "method, entrypoint, destination, status, error_code, latency, "
    "referrer, utm_source, utm_medium, utm_campaign, utm_content, props) "
    "JOIN devices d ON d.workspace_id = $1 AND d.id = v.device";
/* clang-format on */

#define SIM_PARAMS 19 /* per row */

/* --burst LINK:FACTOR:AT:LEN[:EVERY]; times in ms from the start. */
struct burst {
	char *shortlink;
	int link;
	double factor;
	int64_t at, len, every; /* every 0: once */
	int64_t done;		/* extra events inserted */
	bool active;
};

struct sim_row {
	int link, dev;
	struct ev e;
	char ago[24], latency[16];
};

struct sim {
	struct ctl *ctl;
	const char *slug;
	char *ws;
	PGresult *links_res, *qr_res, *dev_res;
	int nlinks;
	struct vlink *links;
	double *link_cum, *share;
	int ndevs, nhuman, nbots;
	struct vdevice *devs;
	int *human, *bot;
	struct rng r;
	double rate;
	int64_t duration; /* ms, 0: until a signal */
	struct burst bursts[MAX_BURSTS];
	int nbursts;
	struct sim_row *rows;
	size_t nrows, cap;
	int64_t events, statements;
};

static volatile sig_atomic_t sim_stop;

static void
sim_on_signal(int sig)
{
	sim_stop = 1;
}

/* "10x", "2.5x" or "10": a factor of at least 1. */
static bool
parse_factor(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (end == s || errno != 0)
		return false;
	if (*end == 'x' || *end == 'X')
		end++;
	return *end == '\0' && isfinite(*out) && *out >= 1 && *out <= 1000;
}

static bool
burst_parse(const char *spec, struct burst *b)
{
	char *copy = xstrdup(spec), *part[6], *save = NULL, *tok;
	int n = 0;
	bool ok = false;

	memset(b, 0, sizeof *b);
	for (tok = strtok_r(copy, ":", &save); tok != NULL && n < 6;
	     tok = strtok_r(NULL, ":", &save))
		part[n++] = tok;
	if ((n == 4 || n == 5) && *part[0] != '\0' &&
	    parse_factor(part[1], &b->factor) &&
	    parse_duration_ms(part[2], &b->at) == 0 &&
	    parse_duration_ms(part[3], &b->len) == 0 && b->len > 0 &&
	    (n == 4 || (parse_duration_ms(part[4], &b->every) == 0 &&
			b->every > b->len))) {
		b->shortlink = xstrdup(part[0]);
		ok = true;
	}
	free(copy);
	return ok;
}

/* Milliseconds of [0, t) during which burst b is on. */
static int64_t
burst_on_ms(const struct burst *b, int64_t t)
{
	int64_t since = t - b->at;

	if (since <= 0)
		return 0;
	if (b->every == 0)
		return since < b->len ? since : b->len;
	return since / b->every * b->len +
	       (since % b->every < b->len ? since % b->every : b->len);
}

static bool
burst_on(const struct burst *b, int64_t t)
{
	return burst_on_ms(b, t + 1) > burst_on_ms(b, t);
}

static int
sim_parse(const struct ctl_cmd *cmd, const struct ctl_args *a, struct sim *s)
{
	const char *v, *specs[MAX_BURSTS + 1];
	char *end;
	int rc = -1;

	s->slug = arg_get(cmd, a, "workspace");
	if (!slug_valid(s->slug))
		return usage_error(cmd,
				   "invalid --workspace '%s': 2 to 63 "
				   "characters, a-z, 0-9 and '-', not "
				   "starting with '-'",
				   s->slug);
	v = arg_get(cmd, a, "rate");
	errno = 0;
	s->rate = strtod(v, &end);
	if (end == v || *end != '\0' || errno != 0 || !isfinite(s->rate) ||
	    s->rate <= 0 || s->rate > MAX_RATE)
		return usage_error(cmd,
				   "invalid --rate '%s' (events per second, "
				   "more than 0 and at most %.0f)",
				   v, MAX_RATE);
	if ((v = arg_get(cmd, a, "duration")) != NULL &&
	    (parse_duration_ms(v, &s->duration) != 0 || s->duration <= 0))
		return usage_error(cmd,
				   "invalid --duration '%s' (a duration such "
				   "as 30s, 10m or 2h)",
				   v);
	s->nbursts = (int)arg_all(cmd, a, "burst", specs, MAX_BURSTS + 1);
	if (s->nbursts > MAX_BURSTS)
		return usage_error(cmd, "at most %d --burst options",
				   MAX_BURSTS);
	for (int i = 0; i < s->nbursts; i++) {
		if (!burst_parse(specs[i], &s->bursts[i])) {
			for (int k = 0; k < i; k++)
				free(s->bursts[k].shortlink);
			s->nbursts = 0;
			return usage_error(
			    cmd,
			    "invalid --burst '%s' (LINK:FACTOR:AT:LEN[:EVERY], "
			    "such as spring-sale:10x:30s:20s or "
			    "pricing:5x:0:1m:10m; EVERY longer than LEN)",
			    specs[i]);
		}
	}
	if ((v = arg_get(cmd, a, "seed")) != NULL) {
		uint64_t seed;

		if (!parse_seed(cmd, v, &seed, &rc))
			return rc;
		rng_init(&s->r, seed, 0);
	} else {
		rng_init(&s->r, seed_random(), 0);
	}
	return -1;
}

static int
cmp_str_ptr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static const char *
currency_of(const char *country)
{
	for (int c = 0; c < NCITIES; c++) {
		if (strcmp(cities[c].country, country) == 0)
			return cities[c].currency;
	}
	return "USD";
}

static const char *
null_if_empty(const char *s)
{
	return *s == '\0' ? NULL : s;
}

/* Reads the workspace's links, QR codes and devices; -1 or exit status. */
static int
sim_load(struct sim *s)
{
	const char *p[1] = {s->ws};
	const char **order; /* link ids, sorted, then their index */
	double total = 0, cum = 0;
	int nqr;

	s->links_res = exec_params(s->ctl, sql_sim_links, 1, p);
	s->qr_res = exec_params(s->ctl, sql_sim_qr_codes, 1, p);
	s->dev_res = exec_params(s->ctl, sql_sim_devices, 1, p);
	if (PQresultStatus(s->links_res) != PGRES_TUPLES_OK)
		return query_error(s->ctl, "reading links", s->links_res);
	if (PQresultStatus(s->qr_res) != PGRES_TUPLES_OK)
		return query_error(s->ctl, "reading QR codes", s->qr_res);
	if (PQresultStatus(s->dev_res) != PGRES_TUPLES_OK)
		return query_error(s->ctl, "reading devices", s->dev_res);
	s->nlinks = PQntuples(s->links_res);
	s->ndevs = PQntuples(s->dev_res);
	if (s->nlinks == 0 || s->ndevs == 0)
		return ctl_error("workspace '%s' has no %s to simulate with: "
				 "fill it first with '" PROG
				 " seed --workspace %s --events 100000'",
				 s->slug, s->nlinks == 0 ? "links" : "devices",
				 s->slug);

	s->links = xcalloc((size_t)s->nlinks, sizeof *s->links);
	s->link_cum = xcalloc((size_t)s->nlinks, sizeof *s->link_cum);
	s->share = xcalloc((size_t)s->nlinks, sizeof *s->share);
	order = xcalloc((size_t)s->nlinks, 2 * sizeof *order);
	for (int i = 0; i < s->nlinks; i++) {
		struct vlink *l = &s->links[i];

		l->id = PQgetvalue(s->links_res, i, 0);
		l->entrypoint = null_if_empty(PQgetvalue(s->links_res, i, 2));
		l->destination = null_if_empty(PQgetvalue(s->links_res, i, 3));
		l->campaign = PQgetvalue(s->links_res, i, 4);
		l->qr_share = 0.75;
		l->convert = 1.0;
		/* The busiest links first: Zipf-like by that rank. */
		s->share[i] = 1.0 / pow(i + 1, 1.07);
		total += s->share[i];
		order[2 * i] = l->id;
		order[2 * i + 1] = (const char *)&s->links[i];
	}
	for (int i = 0; i < s->nlinks; i++) {
		s->share[i] /= total;
		cum += s->share[i];
		s->link_cum[i] = cum;
	}
	s->link_cum[s->nlinks - 1] = 1.0;
	qsort(order, (size_t)s->nlinks, 2 * sizeof *order, cmp_str_ptr);

	/* QR codes come grouped by link. */
	nqr = PQntuples(s->qr_res);
	for (int q = 0; q < nqr;) {
		const char *lid = PQgetvalue(s->qr_res, q, 0);
		const char **hit = bsearch(&lid, order, (size_t)s->nlinks,
					   2 * sizeof *order, cmp_str_ptr);
		int n = 0;

		while (q + n < nqr &&
		       strcmp(PQgetvalue(s->qr_res, q + n, 0), lid) == 0)
			n++;
		if (hit != NULL) {
			struct vlink *l = (struct vlink *)hit[1];
			const char **ids = xcalloc((size_t)n, sizeof *ids);
			const char **contents =
			    xcalloc((size_t)n, sizeof *contents);

			for (int k = 0; k < n; k++) {
				ids[k] = PQgetvalue(s->qr_res, q + k, 1);
				contents[k] =
				    slugify(PQgetvalue(s->qr_res, q + k, 2));
			}
			l->nqr = n;
			l->qr_id = ids;
			l->qr_content = contents;
		}
		q += n;
	}
	free(order);

	s->devs = xcalloc((size_t)s->ndevs, sizeof *s->devs);
	s->human = xcalloc((size_t)s->ndevs, sizeof *s->human);
	s->bot = xcalloc((size_t)s->ndevs, sizeof *s->bot);
	for (int i = 0; i < s->ndevs; i++) {
		struct vdevice *d = &s->devs[i];
		const char *type = PQgetvalue(s->dev_res, i, 1);

		if (strcmp(PQgetvalue(s->dev_res, i, 2), "t") == 0)
			d->cls = DC_BOT;
		else if (strcmp(type, "DEVICE_TYPE_DESKTOP") == 0)
			d->cls = DC_DESKTOP;
		else if (strcmp(type, "DEVICE_TYPE_TABLET") == 0)
			d->cls = DC_TABLET;
		else
			d->cls = DC_MOBILE;
		d->identified = strcmp(PQgetvalue(s->dev_res, i, 3), "t") == 0;
		d->currency = currency_of(PQgetvalue(s->dev_res, i, 4));
		if (d->cls == DC_BOT)
			s->bot[s->nbots++] = i;
		else
			s->human[s->nhuman++] = i;
	}

	for (int i = 0; i < s->nbursts; i++) {
		struct burst *b = &s->bursts[i];

		b->link = -1;
		for (int k = 0; k < s->nlinks; k++) {
			if (strcmp(PQgetvalue(s->links_res, k, 1),
				   b->shortlink) == 0)
				b->link = k;
		}
		if (b->link < 0)
			return ctl_error("--burst: workspace '%s' has no link "
					 "with shortlink '%s'",
					 s->slug, b->shortlink);
	}
	return -1;
}

static void
sim_free(struct sim *s)
{
	for (int i = 0; s->links != NULL && i < s->nlinks; i++) {
		for (int k = 0; k < s->links[i].nqr; k++)
			free((char *)s->links[i].qr_content[k]);
		free((void *)s->links[i].qr_id);
		free((void *)s->links[i].qr_content);
	}
	for (int i = 0; i < s->nbursts; i++)
		free(s->bursts[i].shortlink);
	free(s->links);
	free(s->link_cum);
	free(s->share);
	free(s->devs);
	free(s->human);
	free(s->bot);
	free(s->rows);
	PQclear(s->links_res);
	PQclear(s->qr_res);
	PQclear(s->dev_res);
	free(s->ws);
}

/* Adds n events to the tick's rows: on link (or any, when -1). */
static void
sim_draw(struct sim *s, int64_t n, int link, int64_t span_us)
{
	while (n > 0) {
		struct ev v[MAX_VISIT];
		int li, di, nv;

		li = link >= 0
			 ? link
			 : cum_search(s->link_cum, s->nlinks, rng_unit(&s->r));
		if (s->nbots > 0 &&
		    (s->nhuman == 0 || rng_unit(&s->r) < BOT_VISITS))
			di = s->bot[rng_below(&s->r, (uint64_t)s->nbots)];
		else
			di = s->human[rng_below(&s->r, (uint64_t)s->nhuman)];
		nv = visit_draw(&s->r, &s->links[li], &s->devs[di],
				-(int64_t)rng_below(&s->r, (uint64_t)span_us),
				0, 0.35, v);
		for (int k = 0; k < nv && n > 0; k++, n--) {
			struct sim_row *row;

			if (s->nrows == s->cap) {
				s->cap = s->cap * 2 + 64;
				s->rows =
				    xrealloc(s->rows, s->cap * sizeof *s->rows);
			}
			row = &s->rows[s->nrows++];
			row->link = li;
			row->dev = di;
			row->e = v[k];
			snprintf(row->ago, sizeof row->ago, "%" PRId64,
				 -v[k].at);
			snprintf(row->latency, sizeof row->latency, "%d",
				 v[k].latency);
		}
	}
}

/* Inserts rows [from, to) in one statement; false after reporting. */
static bool
sim_insert(struct sim *s, size_t from, size_t to)
{
	int nparams = 1 + (int)(to - from) * SIM_PARAMS, k = 0;
	const char **p = xcalloc((size_t)nparams, sizeof *p);
	struct buf sql = {0};
	PGresult *res;
	bool ok;

	buf_raw(&sql, sql_sim_insert_head);
	p[k++] = s->ws;
	for (size_t i = from; i < to; i++) {
		const struct sim_row *row = &s->rows[i];
		const struct vlink *l = &s->links[row->link];
		const struct ev *e = &row->e;
		int b = k + 1;

		buf_fmt(&sql,
			"%s($%d::int8, $%d::uuid, $%d::uuid, $%d::uuid, $%d, "
			"$%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d::int, $%d, "
			"$%d, $%d, $%d, $%d, $%d::jsonb)",
			i > from ? ", " : "", b, b + 1, b + 2, b + 3, b + 4,
			b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11,
			b + 12, b + 13, b + 14, b + 15, b + 16, b + 17, b + 18);
		p[k++] = row->ago;
		p[k++] = l->id;
		p[k++] = e->qr >= 0 ? l->qr_id[e->qr] : NULL;
		p[k++] = PQgetvalue(s->dev_res, row->dev, 0);
		p[k++] = e->action;
		p[k++] = e->dest_action;
		p[k++] = e->visit_type;
		p[k++] = e->method;
		p[k++] = l->entrypoint;
		p[k++] = e->redirect ? l->destination : NULL;
		p[k++] = e->status;
		p[k++] = e->error_code;
		p[k++] = e->latency >= 0 ? row->latency : NULL;
		p[k++] = e->referrer;
		p[k++] = e->utm_source;
		p[k++] = e->utm_medium;
		p[k++] = e->utm_campaign;
		p[k++] = e->utm_content;
		p[k++] = e->props;
	}
	buf_raw(&sql, sql_sim_insert_tail);
	*buf_room(&sql, 1) = '\0';
	res =
	    PQexecParams(s->ctl->conn, sql.p, nparams, NULL, p, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (ok) {
		s->events += atoll(PQcmdTuples(res));
		s->statements++;
	} else {
		query_error(s->ctl, "inserting events", res);
	}
	PQclear(res);
	free(sql.p);
	free(p);
	return ok;
}

static bool
sim_partitions(struct sim *s)
{
	PGresult *res = exec_params(s->ctl, sql_sim_partitions, 0, NULL);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		query_error(s->ctl, "creating the event partitions", res);
	PQclear(res);
	return ok;
}

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps until the monotonic time deadline (ns), unless a signal came. */
static void
sleep_until(int64_t deadline)
{
	struct timespec ts = {.tv_sec = deadline / 1000000000,
			      .tv_nsec = deadline % 1000000000};

	while (!sim_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					    NULL) == EINTR)
		;
}

static void
sim_status(const struct sim *s, int64_t now_ms)
{
	double secs = (double)now_ms / 1000;
	char bursts[256] = "";
	size_t used = 0;

	for (int i = 0; i < s->nbursts && used < sizeof bursts; i++) {
		if (s->bursts[i].active)
			used += (size_t)snprintf(
			    bursts + used, sizeof bursts - used,
			    "; burst on %s (x%g)", s->bursts[i].shortlink,
			    s->bursts[i].factor);
	}
	fprintf(stderr,
		"simulate %s: %" PRId64 " events in %.0f s (%.1f events/s), "
		"%" PRId64 " statements%s\n",
		s->slug, s->events, secs, secs > 0 ? s->events / secs : 0.0,
		s->statements, bursts);
}

/*
 * The loop: every TICK_MS, on absolute deadlines, inserts what the rate
 * owes by now (so a slow tick is made up by the next, and nothing
 * drifts), plus each active burst's extra events on its link.
 */
static int
sim_run(struct sim *s)
{
	int64_t t0 = mono_ns(), base_done = 0, prev_ms = 0, tick = 0;
	int64_t next_status = STATUS_MS, next_parts = PARTITIONS_MS;

	while (!sim_stop) {
		int64_t now_ms, due;
		bool last = false;

		tick++;
		sleep_until(t0 + tick * TICK_MS * 1000000LL);
		now_ms = (mono_ns() - t0) / 1000000;
		if (s->duration > 0 && now_ms >= s->duration) {
			now_ms = s->duration;
			last = true;
		}
		/* Late: the next deadline is the next one still ahead. */
		if (now_ms / TICK_MS > tick)
			tick = now_ms / TICK_MS;

		s->nrows = 0;
		due = (int64_t)floor(s->rate * (double)now_ms / 1000.0);
		sim_draw(s, due - base_done, -1, (now_ms - prev_ms + 1) * 1000);
		base_done = due;
		for (int i = 0; i < s->nbursts; i++) {
			struct burst *b = &s->bursts[i];
			double extra = (b->factor - 1) * s->rate *
				       s->share[b->link] *
				       (double)burst_on_ms(b, now_ms) / 1000.0;
			bool on = burst_on(b, now_ms);

			if (on != b->active)
				fprintf(stderr,
					"simulate %s: burst on %s %s "
					"(x%g)\n",
					s->slug, b->shortlink,
					on ? "starts" : "ends", b->factor);
			b->active = on;
			sim_draw(s, (int64_t)floor(extra) - b->done, b->link,
				 (now_ms - prev_ms + 1) * 1000);
			b->done = (int64_t)floor(extra);
		}
		prev_ms = now_ms;

		for (size_t from = 0; from < s->nrows;
		     from += ROWS_PER_INSERT) {
			size_t to = from + ROWS_PER_INSERT;

			if (!sim_insert(s, from, to < s->nrows ? to : s->nrows))
				return EXIT_ERR;
		}
		if (now_ms >= next_status) {
			sim_status(s, now_ms);
			next_status += STATUS_MS;
		}
		if (now_ms >= next_parts) {
			if (!sim_partitions(s))
				return EXIT_ERR;
			next_parts += PARTITIONS_MS;
		}
		if (last)
			break;
	}
	return EXIT_OK;
}

int
cmd_simulate(struct ctl *ctl, const struct ctl_cmd *cmd,
	     const struct ctl_args *a)
{
	struct sim s = {.ctl = ctl};
	struct sigaction sa = {.sa_handler = sim_on_signal}, old_int, old_term;
	char span[32], what[64];
	double t0;
	int rc;

	if ((rc = sim_parse(cmd, a, &s)) >= 0)
		goto out;
	if ((rc = ctl_connect(ctl, true)) >= 0)
		goto out;
	rc = EXIT_ERR;
	if (PQsetClientEncoding(ctl->conn, "UTF8") != 0) {
		ctl_error("%s", pq_message(ctl->conn, NULL));
		goto out;
	}
	if ((s.ws = workspace_id(ctl, s.slug)) == NULL)
		goto out;
	if ((rc = sim_load(&s)) >= 0)
		goto out;
	rc = EXIT_ERR;
	if (!sim_partitions(&s))
		goto out;

	/* No SA_RESTART: a signal ends the sleep at once. */
	sim_stop = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (s.duration > 0) {
		format_duration(s.duration, span, sizeof span);
		snprintf(what, sizeof what, "for %s", span);
	} else {
		snprintf(what, sizeof what, "until SIGINT or SIGTERM");
	}
	fprintf(stderr,
		"simulate %s: %g events/s over %d links and %d devices, %s\n",
		s.slug, s.rate, s.nlinks, s.ndevs, what);
	t0 = mono_sec();
	rc = sim_run(&s);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	{
		double secs = mono_sec() - t0;

		fprintf(stderr,
			"simulated %" PRId64 " events in %.1f s (%.1f "
			"events/s) in %" PRId64 " statements\n",
			s.events, secs, secs > 0 ? s.events / secs : 0.0,
			s.statements);
	}
out:
	sim_free(&s);
	return rc;
}
