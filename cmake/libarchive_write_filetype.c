/* Part of linking libarchive statically (cmake/StaticLibarchive.cmake).
 *
 * libarchive's pax and ustar writers report an entry type they cannot store through
 * __archive_write_entry_filetype_unsupported(), which libarchive defines in
 * archive_write_set_format.o. That object also holds archive_write_set_format(), whose table names
 * every writer libarchive has (xar -> libxml2 -> ICU, zip/7zip -> nettle, iso9660, ...), so pulling
 * it from libarchive.a would drag all of them, and their shared libraries, into kiln. kiln selects
 * its writers by name (archive_write_set_format_pax_restricted) and never calls that table, so this
 * file defines the one helper the pax and ustar writers need, and the linker leaves the table out.
 *
 * If a future libarchive renames the helper, the link fails (undefined xml symbols); if something
 * starts calling archive_write_set_format(), it fails on a duplicate definition. Never silently. */
#include <errno.h>

#include <archive.h>
#include <archive_entry.h>

void __archive_write_entry_filetype_unsupported(struct archive* a, struct archive_entry* entry, const char* format);

void __archive_write_entry_filetype_unsupported(struct archive* a, struct archive_entry* entry, const char* format) {
  const char* kind;
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR: kind = "directories"; break;
    case AE_IFLNK: kind = "symbolic links"; break;
    case AE_IFCHR: kind = "character devices"; break;
    case AE_IFBLK: kind = "block devices"; break;
    case AE_IFIFO: kind = "named pipes"; break;
    case AE_IFSOCK: kind = "sockets"; break;
    default: kind = "entries of this type"; break;
  }
  const char* path = archive_entry_pathname(entry);
  archive_set_error(a, EILSEQ /* libarchive's ARCHIVE_ERRNO_FILE_FORMAT on Linux */, "%s: the %s format cannot store %s", path ? path : "(no name)",
                    format, kind);
}
