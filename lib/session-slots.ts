/**
 * Sessions each user holds on this gateway node, against a cap. Without one, a single
 * user could hold every file descriptor of the process, and every message to them
 * would be encoded and sent once per socket.
 */
export class SessionSlots {
	private readonly held = new Map<string, number>();

	constructor(private readonly perUser: number) {}

	/** Takes one of the user's slots; false when all of them are in use. */
	take(userId: string): boolean {
		const count = this.held.get(userId) ?? 0;
		if (count >= this.perUser) return false;
		this.held.set(userId, count + 1);
		return true;
	}

	/** Gives back a slot taken with `take` (call it once per slot). */
	release(userId: string): void {
		const count = (this.held.get(userId) ?? 0) - 1;
		if (count > 0) this.held.set(userId, count);
		else this.held.delete(userId);
	}
}
