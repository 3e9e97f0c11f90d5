"""League trackers (seed 002): players' stats-site profiles registered for a league, scraped
by the Rocket League source as polls, with their seasons kept as snapshot history, changes
sent to the owner's and the guild's channels, and a guild's batches on a schedule."""
