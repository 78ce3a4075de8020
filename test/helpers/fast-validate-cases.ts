/**
 * Payload classes with every constraint lib/fast-validate.ts has a fast yes for, and the values
 * at their edges (NaN, infinities, -0, boxed primitives, surrogates, holes, a global pattern; a
 * sticky one is left out: validator.js's `str.match` makes its answers alternate between calls). `answers()` gives, for every property and value, what certainlyValid and
 * validateSync say; run as a script it prints them as JSON (the spec runs it once more with code
 * generation disallowed, to compare the loop with the generated function).
 */
import 'reflect-metadata';
import {
  IsBoolean, IsDefined, IsIn, IsInt, IsNumber, IsOptional, IsString, Length, Matches, Max, Min, ValidateIf, validateSync,
} from 'class-validator';
import { certainlyValid } from '../../lib/fast-validate';

const VALIDATION = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

export class Covered {
  @IsString() @Length(2, 4) s!: string;
  @Length(1) long!: string;
  @Matches(/^x+$/) re!: string;
  @Matches(/x/g) global!: string;
  @Matches('^[ab]+$', 'i') pattern!: string;
  @IsNumber() n!: number;
  @IsNumber({ maxDecimalPlaces: 1 }) decimals!: number;
  @IsNumber({ allowNaN: true, allowInfinity: true }) anyNumber!: number;
  @IsInt() @Min(-1) @Max(10) int!: number;
  @IsBoolean() flag!: boolean;
  // A hole and an undefined entry: `some` skips the first and matches the second.
  // eslint-disable-next-line no-sparse-arrays
  @IsIn([, 'a', 0]) sparse!: unknown;
  @IsIn(['a', undefined, NaN]) withUndefined!: unknown;
  @IsDefined() defined!: unknown;
  @IsOptional() @IsString() optional?: string;
  @ValidateIf((o: Covered) => o.flag === true) @IsInt() when?: number;
}

/** One instance valid in every property. */
export function validCovered(): Record<string, unknown> {
  return {
    s: 'abc', long: 'x', re: 'xx', global: 'axb', pattern: 'AbA', n: 1.5, decimals: 2.5, anyNumber: 3,
    int: 4, flag: false, sparse: 'a', withUndefined: 'a', defined: 0, when: undefined,
  };
}

export const EDGE_VALUES: readonly unknown[] = [
  undefined, null, 0, -0, 1, -1, 10, 11, 1.5, 2.25, NaN, Infinity, -Infinity, 2 ** 53, '', 'a', 'ab', 'abc', 'abcd', 'abcde',
  'x', 'xx', 'xa', 'ax', 'AB', 'ba', 'a\u{1F600}', '\u{1F600}\u{1F600}', 'a\uFE0F', '\uD800', 'aa\uDC00', true, false,
  // Boxed primitives, objects and arrays: their answers come from the constraints themselves.
  // eslint-disable-next-line no-new-wrappers
  new String('abc'), new Number(3), new Boolean(true), {}, [], ['a'], '1', 'NaN',
];

/** Strings quoted, so that '1' and 1 differ. */
function label(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return `${value.constructor.name}(${String(value)})`;
  return Object.is(value, -0) ? '-0' : String(value);
}

/** For each property and edge value (the rest of the instance valid): [fast, valid by validateSync]. */
export function answers(): Array<{ property: string; value: string; fast: boolean; valid: boolean }> {
  const out = [];
  for (const property of Object.keys(validCovered()).concat('optional', 'extra')) {
    for (const value of EDGE_VALUES) {
      const instance = Object.assign(new Covered(), validCovered(), { [property]: value });
      out.push({
        property,
        value: label(value),
        fast: certainlyValid(instance) === true,
        valid: validateSync(instance, VALIDATION).length === 0,
      });
    }
  }
  return out;
}

if (require.main === module) process.stdout.write(JSON.stringify(answers()));
