// Extracts one member of a Debian package (an `ar` archive) to a file, for machines without dpkg-deb or ar:
//   deno run -A unpack_deb.js PACKAGE.deb data.tar.xz OUT
// The `ar` format: the magic "!<arch>\n", then per member a 60-byte header (name 16, mtime 12, uid 6, gid 6,
// mode 8, size 10, "`\n") followed by the data, padded to an even length.
const [debPath, member, outPath] = Deno.args;
if (!debPath || !member || !outPath) {
  console.error("usage: deno run -A unpack_deb.js PACKAGE.deb MEMBER OUT");
  Deno.exit(2);
}
const bytes = await Deno.readFile(debPath);
const text = (from, length) => new TextDecoder().decode(bytes.subarray(from, from + length));
if (text(0, 8) !== "!<arch>\n") {
  console.error(`${debPath} is not a Debian package (no ar header)`);
  Deno.exit(1);
}
let offset = 8;
const names = [];
while (offset + 60 <= bytes.length) {
  const name = text(offset, 16).trim().replace(/\/$/, "");
  const size = Number(text(offset + 48, 10).trim());
  if (!Number.isFinite(size)) break;
  names.push(name);
  if (name === member) {
    await Deno.writeFile(outPath, bytes.subarray(offset + 60, offset + 60 + size));
    Deno.exit(0);
  }
  offset += 60 + size + (size % 2);
}
console.error(`${debPath} has no member ${member} (members: ${names.join(", ")})`);
Deno.exit(1);
