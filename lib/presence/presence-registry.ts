/**
 * Who is connected where: user -> live sessions (nodeID, sessionId, deviceId),
 * and when each user was last seen. Memory for the embedded profile; the
 * cluster profile keeps the same semantics in Redis with TTL heartbeats.
 */
import type { PresenceState } from "../../contract";

export interface SessionInfo {
	sessionId: string;
	userId: string;
	deviceId: string;
	nodeID: string;
}

export interface PresenceRegistry {
	/** Adds a session; `cameOnline` when it is the user's first. */
	add(session: SessionInfo): Promise<{ cameOnline: boolean }>;
	/** Removes a session; `wentOffline` when it was the user's last. */
	remove(session: SessionInfo): Promise<{ wentOffline: boolean; lastSeenAt: string }>;
	sessionsOf(userIds: string[]): Promise<SessionInfo[]>;
	states(userIds: string[]): Promise<PresenceState[]>;
}
