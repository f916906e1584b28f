// Which `error` events the chat view shows by itself. A refusal of an event sent with an ack is shown where
// it was sent (the ack carries it); audio_chunk is sent without one, so its refusals (utterance_too_long,
// rate_limited, chunk_too_large) are shown here, or the user would only learn of them at audio_end.
const SAID_BY_THE_ACK = new Set(["busy", "no_speech"]);
const WITHOUT_ACK = new Set(["audio_chunk"]);

/** Whether the view should show `error` as a toast. */
export function showsRefusal(error) {
  if (!error || SAID_BY_THE_ACK.has(error.code)) return false;
  return !error.event || WITHOUT_ACK.has(error.event);
}
