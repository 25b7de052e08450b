"""Adapters for the voice-agent stacks avatar teams build on (optional extras; the base install
never imports this package): `livekit` (a LiveKit Agents VideoGenerator, worker and dispatcher,
`flashhead-ops[livekit]`) and `pipecat` (a Pipecat video service, `flashhead-ops[pipecat]`).
Both sit on `avatar_stream.AvatarStream`: protocol 2's paired frames and barge-in."""
