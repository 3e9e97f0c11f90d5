"""League trackers (seed 002): players' stats-site profiles registered for a league, polled
with the Rocket League source, with their seasons kept as snapshot history, changes
sent to the owner's and the guild's channels, and a guild's batches on a schedule."""
