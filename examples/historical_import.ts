// Seed: "Historical Import" and "Timezones in Python".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

// A Date is an exact instant; Date.UTC builds it in UTC, like the seed's tzinfo=tzutc().
// The seed's year 2538 is kept as written: `tally serve` flags it (more than 24 hours in the future),
// which is what the demo's one "bad" message shows.
const timestamp = new Date(Date.UTC(2538, 9, 17, 0, 0, 0, 0));
analytics.track("019mr8mf4r", "Bought a game", {
  game: "Duke Nukem forever",
}, { timestamp });

// A string works too when it carries its zone ("Z" or an offset). A zone-less string such as
// "2016-06-06T01:46:33" is refused with a ValidationError: it would be read in whatever zone
// the machine is in and land at the wrong time (the seed's naive datetime problem).
analytics.track("019mr8mf4r", "Bought a game", {
  game: "Duke Nukem forever",
}, { timestamp: "2016-06-06T01:46:33.939388-07:00" });

await analytics.flush();
