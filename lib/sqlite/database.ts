/**
 * One SQLite connection per data directory, shared by the store and the search
 * index of the embedded profile: SQLite allows a single writer, so two
 * connections in one process would only contend for the lock.
 */
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

type Handle = { db: Database.Database; users: number };
const open = new Map<string, Handle>();

export function acquireDatabase(dataDir: string): Database.Database {
	const file = path.join(dataDir, "parley.db");
	let handle = open.get(file);
	if (!handle) {
		fs.mkdirSync(dataDir, { recursive: true });
		const db = new Database(file);
		// WAL + FULL: a commit is on disk when it returns; group commit keeps that to one fsync per batch.
		db.pragma("journal_mode = WAL");
		db.pragma("synchronous = FULL");
		db.pragma("foreign_keys = ON");
		db.pragma("busy_timeout = 5000");
		handle = { db, users: 0 };
		open.set(file, handle);
	}
	handle.users++;
	return handle.db;
}

export function releaseDatabase(db: Database.Database): void {
	for (const [file, handle] of open) {
		if (handle.db !== db) continue;
		if (--handle.users === 0) {
			open.delete(file);
			db.close();
		}
		return;
	}
}
