import assert from 'node:assert/strict';
import { optionKeys, unknownKeys } from '../../lib/option-keys';

interface Opts {
  readonly a?: number;
  readonly b: string;
}

describe('optionKeys: option-key lists derived from their interface', () => {
  it('takes every key of the interface and nothing else (checked by the compiler), and finds unknown keys', () => {
    const keys = optionKeys<Opts>({ a: true, b: true });
    assert.deepEqual([...keys], ['a', 'b']);
    // @ts-expect-error: `b` is missing
    optionKeys<Opts>({ a: true });
    // @ts-expect-error: `c` is not an option of Opts
    optionKeys<Opts>({ a: true, b: true, c: true });
    const problems: string[] = [];
    unknownKeys({ a: 1, typo: 2 }, keys, 'where', problems);
    assert.deepEqual(problems, ['where: unknown option "typo" (known: a, b)']);
  });
});
