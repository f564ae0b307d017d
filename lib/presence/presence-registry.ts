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
	open?(): Promise<void>;
	close?(): Promise<void>;
	/** Adds a session; `cameOnline` when it is the user's first. */
	add(session: SessionInfo): Promise<{ cameOnline: boolean }>;
	/** Removes a session; `wentOffline` when it was the user's last. */
	remove(session: SessionInfo): Promise<{ wentOffline: boolean; lastSeenAt: string }>;
	/** Live sessions only: sessions of a node whose heartbeat expired are never returned. */
	sessionsOf(userIds: string[]): Promise<SessionInfo[]>;
	states(userIds: string[]): Promise<PresenceState[]>;

	// Cluster only (a registry shared by several nodes). A single process has nothing to expire.

	/**
	 * Keeps a gateway node's sessions alive for one TTL. `known: false` when the registry had
	 * no live record of the node (first beat, the node was declared dead, or Redis lost its
	 * data): the node must then `restore` the sessions it holds.
	 */
	heartbeat?(nodeID: string): Promise<{ known: boolean }>;
	/** Re-registers a node's live sessions in bulk; returns the users that came online by it. */
	restore?(nodeID: string, sessions: SessionInfo[]): Promise<{ cameOnline: string[] }>;
	/**
	 * Removes every session of nodes whose heartbeat expired and returns the users that went
	 * offline by it. Safe to run on every node at once: each dead node is swept by one caller.
	 */
	sweep?(): Promise<{ userId: string; lastSeenAt: string }[]>;
	/** Declares a node dead and sweeps it at once (a node starting again under the same id). */
	forgetNode?(nodeID: string): Promise<{ userId: string; lastSeenAt: string }[]>;
	/** The sessions the registry holds for a node (`deviceId` may be empty). */
	sessionsOfNode?(nodeID: string): Promise<SessionInfo[]>;
}
