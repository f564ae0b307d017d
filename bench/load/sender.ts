/** Sends one bench message on a lane and reports its fate to the tracker. */
import type { WireError } from "../../contract";
import type { Lane } from "./fleet";
import type { MessageTracker } from "./tracker";
import { clientMsgIdOf, textFor } from "./payload";

/**
 * No per-call timeout: a timer per message would cost the generator more than
 * the work it measures. Whatever is never answered shows up as `unacked`.
 */
export function sendMessage(lane: Lane, tracker: MessageTracker, intendedAt: number, onAnswer?: () => void): void {
	const gid = tracker.register(intendedAt, performance.now());
	const params = { conversationId: lane.conversationId, clientMsgId: clientMsgIdOf(gid), type: "text", text: textFor(intendedAt) };
	lane.socket.emit("call", "messages.send", params, (err: WireError | null) => {
		if (err) tracker.refused(gid, err.type ?? err.name ?? "ERROR");
		else tracker.acked(gid, performance.now());
		onAnswer?.();
	});
}
