/**
 * Optional (--receipts): recipients mark messages delivered the way a real
 * client would, coalesced: at most one receipts.mark in flight per socket and
 * conversation, always for the highest seq seen so far.
 */
import type { Socket } from "socket.io-client";

interface MarkState {
	inFlight: boolean;
	highestSeen: number;
	highestMarked: number;
}

export class DeliveredMarker {
	private readonly states = new Map<Socket, Map<string, MarkState>>();
	marked = 0;
	failed = 0;

	note(socket: Socket, conversationId: string, seq: number): void {
		let bySocket = this.states.get(socket);
		if (!bySocket) this.states.set(socket, (bySocket = new Map()));
		let state = bySocket.get(conversationId);
		if (!state) bySocket.set(conversationId, (state = { inFlight: false, highestSeen: 0, highestMarked: 0 }));
		if (seq > state.highestSeen) state.highestSeen = seq;
		this.pump(socket, conversationId, state);
	}

	private pump(socket: Socket, conversationId: string, state: MarkState): void {
		if (state.inFlight || state.highestSeen <= state.highestMarked) return;
		const seq = state.highestSeen;
		state.inFlight = true;
		socket.emit("call", "receipts.mark", { conversationId, seq, state: "delivered" }, (err: unknown) => {
			state.inFlight = false;
			if (err) this.failed++;
			else this.marked++;
			// Even a refused mark moves on: retrying at once would turn one error into a busy loop.
			state.highestMarked = Math.max(state.highestMarked, seq);
			this.pump(socket, conversationId, state);
		});
	}
}
