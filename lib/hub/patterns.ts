/**
 * File-path patterns for selecting repo files: globs (`tables_*\/**`, `images_*.zip`) and, for
 * deletion, regular expressions written as `re:<regex>`.
 */

/** A compiled pattern: the text the user gave and a predicate over repo paths. */
export interface PathPattern {
  /** The pattern as given. */
  source: string;
  /** "glob" or "regex". */
  kind: "glob" | "regex";
  /** True when the repo-relative path (forward slashes) matches. */
  test(path: string): boolean;
}

/**
 * Compiles one pattern. `re:<regex>` is a JavaScript regular expression searched anywhere in
 * the path (anchor it with ^...$ to match whole paths); anything else is a glob matched against
 * the whole path (`*` stays within a folder, `**` crosses folders); a glob ending in `/` matches
 * everything below that folder.
 */
export function compilePattern(source: string): PathPattern {
  const text = source.trim();
  if (text === "") throw new Error("empty file pattern: remove it or write a glob such as tables_*/**");
  if (text.startsWith("re:")) {
    let regex: RegExp;
    try {
      regex = new RegExp(text.slice(3));
    } catch (error) {
      throw new Error(
        `pattern ${JSON.stringify(source)} is not a valid regular expression: ${(error as Error).message}`,
      );
    }
    return { source, kind: "regex", test: (path) => regex.test(path) };
  }
  const regex = globToRegExp(text.endsWith("/") ? `${text}**` : text);
  return { source, kind: "glob", test: (path) => regex.test(path) };
}

/**
 * Translates a glob into an anchored RegExp: `**` matches across folders (`**\/` also matches
 * zero folders), `*` and `?` stay within one folder, `{a,b}` is alternation, `[...]` a class.
 */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === "*") {
      if (glob[i + 1] === "*") {
        const slash = glob[i + 2] === "/";
        out += slash ? "(?:.*/)?" : ".*";
        i += slash ? 2 : 1;
      } else out += "[^/]*";
    } else if (char === "?") out += "[^/]";
    else if (char === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close < 0) out += "\\[";
      else {
        const body = glob.slice(i + 1, close).replace(/^!/, "^").replace(/\\/g, "\\\\");
        out += `[${body}]`;
        i = close;
      }
    } else if (char === "{") {
      braces++;
      out += "(?:";
    } else if (char === "}" && braces > 0) {
      braces--;
      out += ")";
    } else if (char === "," && braces > 0) out += "|";
    else out += char.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  if (braces > 0) throw new Error(`glob ${JSON.stringify(glob)} has an unclosed "{"`);
  return new RegExp(`^${out}$`);
}

/** Splits a comma-separated parameter ("a, b") into patterns; an empty string gives none. */
export function splitPatternList(text: string): string[] {
  return text.split(",").map((part) => part.trim()).filter((part) => part !== "");
}

/** A predicate that is true when any pattern matches; with no patterns, everything matches. */
export function anyPatternMatcher(patterns: readonly string[] | undefined): (path: string) => boolean {
  const compiled = (patterns ?? []).map(compilePattern);
  if (compiled.length === 0) return () => true;
  return (path) => compiled.some((pattern) => pattern.test(path));
}
