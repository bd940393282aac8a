// Just enough DER (X.690) to write an end-entity certificate and to find a certificate's
// subject name bytes. Certificate issuance is on the control plane's hot path (every workload,
// every renewal); building the structure directly costs a few microseconds where a general
// ASN.1 library spends milliseconds of event-loop time per certificate.

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
} as const;

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** Tag, length, then the contents. */
export function derElement(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

export function derSequence(...elements: Uint8Array[]): Buffer {
  return derElement(TAG.sequence, ...elements);
}

/** A non-negative INTEGER from its big-endian magnitude, minimally encoded (0x00 prefix when the top bit is set). */
export function derUnsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return derElement(TAG.integer, trimmed[0]! & 0x80 ? Uint8Array.of(0, ...trimmed) : trimmed.length === 0 ? Uint8Array.of(0) : trimmed);
}

export function derSmallInteger(value: number): Buffer {
  return derUnsignedInteger(Uint8Array.of(value));
}

/** An OBJECT IDENTIFIER from dotted form ("1.2.840.10045.4.3.2"). */
export function derObjectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) groups.unshift((rest & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return derElement(TAG.oid, Uint8Array.from(bytes));
}

export function derNull(): Buffer {
  return derElement(TAG.null);
}

export function derBoolean(value: boolean): Buffer {
  return derElement(TAG.boolean, Uint8Array.of(value ? 0xff : 0x00));
}

export function derOctetString(bytes: Uint8Array): Buffer {
  return derElement(TAG.octetString, bytes);
}

/** A BIT STRING of whole bytes (no unused bits), as used for signatures. */
export function derBitString(bytes: Uint8Array): Buffer {
  return derElement(TAG.bitString, Uint8Array.of(0), bytes);
}

/**
 * A named-bit BIT STRING (such as KeyUsage) with bits numbered from 0 (the most significant
 * bit of the first byte); trailing zero bits are dropped, as DER requires.
 */
export function derNamedBits(bitNumbers: readonly number[]): Buffer {
  const highest = Math.max(...bitNumbers);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const bit of bitNumbers) bytes[Math.floor(bit / 8)]! |= 0x80 >> bit % 8;
  const unusedBits = 7 - (highest % 8);
  return derElement(TAG.bitString, Uint8Array.of(unusedBits), bytes);
}

/** A context-specific tag: [n] IMPLICIT over primitive contents, or [n] EXPLICIT / constructed. */
export function derContext(tagNumber: number, constructed: boolean, ...contents: Uint8Array[]): Buffer {
  return derElement(0x80 | (constructed ? 0x20 : 0) | tagNumber, ...contents);
}

function twoDigits(value: number): string {
  return String(value).padStart(2, "0");
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, "Z". */
export function derTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest = `${twoDigits(date.getUTCMonth() + 1)}${twoDigits(date.getUTCDate())}${twoDigits(date.getUTCHours())}${twoDigits(date.getUTCMinutes())}${twoDigits(date.getUTCSeconds())}Z`;
  return year < 2050 ? derElement(TAG.utcTime, Buffer.from(`${twoDigits(year % 100)}${rest}`, "latin1")) : derElement(TAG.generalizedTime, Buffer.from(`${year}${rest}`, "latin1"));
}

// ---------------------------------------------------------------------------------------
// Reading

interface DerSpan {
  tag: number;
  /** Where the element starts (its tag byte) and ends, in the buffer. */
  start: number;
  end: number;
  /** Where its contents start. */
  contentStart: number;
}

function readElement(der: Uint8Array, offset: number): DerSpan {
  const tag = der[offset];
  let lengthByte = der[offset + 1];
  if (tag === undefined || lengthByte === undefined) throw new Error(`DER: truncated element at byte ${offset}`);
  let contentStart = offset + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) throw new Error(`DER: unsupported length form at byte ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = der[contentStart + i];
      if (lengthByte === undefined) throw new Error(`DER: truncated length at byte ${offset}`);
      length = length * 256 + lengthByte;
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > der.length) throw new Error(`DER: element at byte ${offset} runs past the end`);
  return { tag, start: offset, end, contentStart };
}

/** The exact DER bytes of a certificate's subject Name (to use as issuer of what it signs). */
export function certificateSubjectDer(certificateDer: Uint8Array): Buffer {
  const certificate = readElement(certificateDer, 0);
  const tbs = readElement(certificateDer, certificate.contentStart);
  let offset = tbs.contentStart;
  let field = readElement(certificateDer, offset);
  if (field.tag === 0xa0) field = readElement(certificateDer, (offset = field.end)); // [0] version
  // serialNumber, signature, issuer, validity, then subject
  for (let skip = 0; skip < 4; skip++) field = readElement(certificateDer, (offset = field.end));
  if (field.tag !== TAG.sequence) throw new Error("DER: the certificate's subject is not a SEQUENCE");
  return Buffer.from(certificateDer.subarray(field.start, field.end));
}
