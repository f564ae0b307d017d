/** PresenceRegistry in process memory: the embedded profile has one node, so nothing can go stale. */
import type { PresenceState } from "../../contract";
import type { PresenceRegistry, SessionInfo } from "./presence-registry";

export class MemoryPresence implements PresenceRegistry {
	private readonly sessions = new Map<string, Map<string, SessionInfo>>();
	private readonly lastSeen = new Map<string, string>();

	async add(session: SessionInfo): Promise<{ cameOnline: boolean }> {
		let mine = this.sessions.get(session.userId);
		const cameOnline = !mine || mine.size === 0;
		if (!mine) this.sessions.set(session.userId, (mine = new Map()));
		mine.set(session.sessionId, session);
		return { cameOnline };
	}

	async remove(session: SessionInfo): Promise<{ wentOffline: boolean; lastSeenAt: string }> {
		const lastSeenAt = new Date().toISOString();
		const mine = this.sessions.get(session.userId);
		const existed = mine?.delete(session.sessionId) ?? false;
		const wentOffline = existed && mine!.size === 0;
		if (wentOffline) {
			this.sessions.delete(session.userId);
			this.lastSeen.set(session.userId, lastSeenAt);
		}
		return { wentOffline, lastSeenAt };
	}

	async sessionsOf(userIds: string[]): Promise<SessionInfo[]> {
		const out: SessionInfo[] = [];
		for (const id of userIds) {
			const mine = this.sessions.get(id);
			if (mine) for (const s of mine.values()) out.push(s);
		}
		return out;
	}

	async states(userIds: string[]): Promise<PresenceState[]> {
		return userIds.map((userId) => {
			const online = (this.sessions.get(userId)?.size ?? 0) > 0;
			// Someone online is seen now: lastSeenAt only means something while offline.
			return { userId, online, lastSeenAt: online ? null : (this.lastSeen.get(userId) ?? null) };
		});
	}
}
