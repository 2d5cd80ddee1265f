/**
 * A name as compared when a new key claims it (see security/pins.ts): two
 * names that read alike are the same name. The key is the name with every
 * default-ignorable code point removed (the characters that print as
 * nothing: soft hyphen, zero-width space and joiners, the combining
 * grapheme joiner, variation selectors, tag characters, bidirectional
 * marks, Hangul fillers, …) and the rest in NFKC, which folds compatibility
 * forms (fullwidth `ｂｏｂ`, mathematical `𝐛𝐨𝐛`, the ligature `ﬁ`) to the
 * plain letters. So `bo\u00ADb`, `bob\u200B` and `ｂｏｂ` all claim `bob`.
 *
 * Not folded: case (`Bob` reads differently), and letters of other scripts
 * that look alike (Cyrillic `о` in `bоb`), which no normal form joins.
 *
 * @module
 */

const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/** `name` as compared for a claim: default-ignorable characters removed, NFKC. */
export function nameKey(name: string): string {
  return name.replace(IGNORABLE, "").normalize("NFKC").replace(IGNORABLE, "");
}
