/**
 * Keyset pagination, newest first: a list query asks for one row more than the page (`limit + 1`); that
 * extra row only says another page exists and is dropped here.
 */
export function page<T>(rows: T[], limit: number): { rows: T[]; hasMore: boolean } {
  const hasMore = rows.length > limit;
  return { rows: hasMore ? rows.slice(0, limit) : rows, hasMore };
}
