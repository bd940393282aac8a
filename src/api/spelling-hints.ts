// "Did you mean" hints: the known name closest to a misspelt one, by edit distance. Small
// lists (field names, enum values, a few hundred hosts) are searched in full; large ones
// (every host of a 10,000-service mesh) go through a trigram index, so one hint costs a
// bounded number of comparisons however large the mesh is.

import { runToEnd, type Steps } from "../work/work-steps.js";

/** Counts edit-distance comparisons (tests prove the search is bounded with it). */
export interface HintCounter {
  comparisons: number;
}

/**
 * Edit distance (insert, delete, substitute one character; letters compared without case).
 * With `limit`, stops as soon as the distance must exceed it and returns `limit + 1`.
 */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  const lowerB = Array.from({ length: b.length }, (_, j) => b[j]!.toLowerCase());
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const ca = a[i - 1]!.toLowerCase();
    let diagonal = row[0]!;
    row[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      const d = Math.min(above + 1, row[j - 1]! + 1, diagonal + (ca === lowerB[j - 1] ? 0 : 1));
      row[j] = d;
      if (d < rowMin) rowMin = d;
      diagonal = above;
    }
    if (rowMin > limit) return limit + 1;
  }
  return row[b.length]!;
}

/** The largest edit distance that still makes a useful hint for `word`. */
function hintDistance(word: string): number {
  return Math.max(2, Math.floor(word.length / 4));
}

/**
 * The candidate closest to `word` within hintDistance(word), the first one listed on a tie;
 * undefined when none is that close. Compares with every candidate: for short lists.
 */
export function closestMatch(word: string, candidates: readonly string[], counter?: HintCounter): string | undefined {
  let best: string | undefined;
  let bestDistance = hintDistance(word) + 1;
  for (const c of candidates) {
    if (counter) counter.comparisons++;
    const d = editDistance(word, c, bestDistance - 1);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Up to this many candidates, HintIndex compares with all of them (the hint closestMatch gives). */
export const FULL_SEARCH_LIMIT = 256;
/** Beyond it: at most this many candidates, those sharing the most trigrams with the word, are compared. */
export const MAX_COMPARED = 64;
/** ... and at most this many trigram postings are read to choose them (rarest trigrams first). */
const MAX_POSTINGS_READ = 4096;

function trigramsOf(word: string): string[] {
  const padded = `\u0002${word.toLowerCase()}\u0003`;
  const grams = new Set<string>();
  for (let i = 0; i + 3 <= padded.length; i++) grams.add(padded.slice(i, i + 3));
  return [...grams];
}

/** Names indexed between two steps of HintIndex.indexSteps. */
const NAMES_PER_STEP = 256;

/**
 * "Did you mean" over a fixed set of names, built once and asked many times (one validation
 * run). The same word asked twice is answered from memory. The trigram index of a large set
 * is built on first use, or ahead of it in steps (indexSteps) by a caller that must not block.
 */
export class HintIndex {
  private readonly candidates: readonly string[];
  private readonly postings = new Map<string, number[]>();
  /** Candidates indexed so far (all of them once the index is complete). */
  private indexed = 0;
  private readonly answers = new Map<string, string | undefined>();

  constructor(
    names: Iterable<string>,
    private readonly counter?: HintCounter,
  ) {
    this.candidates = [...new Set(names)];
    if (this.candidates.length <= FULL_SEARCH_LIMIT) this.indexed = this.candidates.length; // searched in full, no index
  }

  /** Completes the trigram index, yielding every NAMES_PER_STEP names (work-steps.ts). */
  *indexSteps(): Steps<void> {
    while (this.indexed < this.candidates.length) {
      const end = Math.min(this.candidates.length, this.indexed + NAMES_PER_STEP);
      for (let index = this.indexed; index < end; index++) {
        for (const gram of trigramsOf(this.candidates[index]!)) {
          const list = this.postings.get(gram);
          if (list) list.push(index);
          else this.postings.set(gram, [index]);
        }
      }
      this.indexed = end;
      yield;
    }
  }

  get size(): number {
    return this.candidates.length;
  }

  closest(word: string): string | undefined {
    if (this.answers.has(word)) return this.answers.get(word);
    if (this.indexed < this.candidates.length) runToEnd(this.indexSteps());
    const answer = this.candidates.length <= FULL_SEARCH_LIMIT ? closestMatch(word, this.candidates, this.counter) : closestMatch(word, this.shortlist(word), this.counter);
    this.answers.set(word, answer);
    return answer;
  }

  /**
   * The candidates most likely to be within hint distance: those of a possible length that
   * share the most trigrams with `word`, reading the rarest trigrams first (a trigram every
   * host has, like "svc", says nothing), in the candidates' own order.
   */
  private shortlist(word: string): string[] {
    const maxDistance = hintDistance(word);
    const lists = trigramsOf(word)
      .map((gram) => this.postings.get(gram))
      .filter((list): list is number[] => list !== undefined)
      .sort((a, b) => a.length - b.length);
    const shared = new Map<number, number>();
    let read = 0;
    for (const list of lists) {
      if (read + list.length > MAX_POSTINGS_READ) break;
      read += list.length;
      for (const index of list) {
        if (Math.abs(this.candidates[index]!.length - word.length) > maxDistance) continue;
        shared.set(index, (shared.get(index) ?? 0) + 1);
      }
    }
    return [...shared]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, MAX_COMPARED)
      .map(([index]) => index)
      .sort((a, b) => a - b)
      .map((index) => this.candidates[index]!);
  }
}
