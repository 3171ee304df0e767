//! A cab's layout checked before the `cab` crate reads it.
//!
//! The crate trusts the file table: a file said to start beyond its folder's
//! data, or an uncompressed block whose stored size differs from its
//! stated size, makes it index past its block list and panic (the archive
//! fuzz target found the first within seconds). This reads the header,
//! the folder table, every data block's header and the file table, and
//! refuses a cabinet whose files do not lie inside their folders' data,
//! so that the crate only ever sees a consistent layout.

use std::io::{Read, Seek, SeekFrom};

/// A cabinet's flags: reserve fields present, a previous or next cabinet.
const FLAG_PREV: u16 = 0x1;
const FLAG_NEXT: u16 = 0x2;
const FLAG_RESERVE: u16 = 0x4;
/// The compression type's low four bits: 0 is stored, uncompressed.
const COMPRESSION_MASK: u16 = 0x000f;

/// Why the layout is unsound, or `Ok` when every file lies inside its
/// folder's data. Leaves the reader anywhere: the caller rewinds it.
pub fn check_layout<R: Read + Seek>(reader: &mut R) -> Result<(), String> {
    let io = |e: std::io::Error| format!("truncated or unreadable header: {e}");
    let len = reader.seek(SeekFrom::End(0)).map_err(io)?;
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut header = [0u8; 36];
    reader.read_exact(&mut header).map_err(io)?;
    if &header[..4] != b"MSCF" {
        return Err("no MSCF signature".into());
    }
    let files_offset = u32_at(&header, 16);
    let folders = u16_at(&header, 26);
    let files = u16_at(&header, 28);
    let flags = u16_at(&header, 30);
    let (mut folder_reserve, mut data_reserve) = (0u64, 0u64);
    if flags & FLAG_RESERVE != 0 {
        let mut sizes = [0u8; 4];
        reader.read_exact(&mut sizes).map_err(io)?;
        folder_reserve = u64::from(sizes[2]);
        data_reserve = u64::from(sizes[3]);
        let header_reserve = i64::from(u16::from_le_bytes([sizes[0], sizes[1]]));
        reader.seek(SeekFrom::Current(header_reserve)).map_err(io)?;
    }
    for (flag, strings) in [(FLAG_PREV, 2), (FLAG_NEXT, 2)] {
        if flags & flag != 0 {
            for _ in 0..strings {
                skip_name(reader).map_err(io)?;
            }
        }
    }

    // (first block's offset, block count, stored) per folder.
    let mut folder_table = Vec::with_capacity(usize::from(folders));
    for _ in 0..folders {
        let mut entry = [0u8; 8];
        reader.read_exact(&mut entry).map_err(io)?;
        reader
            .seek(SeekFrom::Current(folder_reserve as i64))
            .map_err(io)?;
        let stored = u16_at(&entry, 6) & COMPRESSION_MASK == 0;
        folder_table.push((u32_at(&entry, 0), u16_at(&entry, 4), stored));
    }
    let mut folder_sizes = Vec::with_capacity(folder_table.len());
    for (index, &(offset, blocks, stored)) in folder_table.iter().enumerate() {
        let mut position = u64::from(offset);
        let mut unpacked = 0u64;
        for block in 0..blocks {
            let mut entry = [0u8; 8];
            reader.seek(SeekFrom::Start(position)).map_err(io)?;
            reader
                .read_exact(&mut entry)
                .map_err(|e| format!("folder {index}, data block {block}: {e}"))?;
            let (packed, size) = (u16_at(&entry, 4), u16_at(&entry, 6));
            if stored && packed != size {
                return Err(format!(
                    "folder {index}, data block {block}: stored, yet {packed} bytes are said to hold {size}"
                ));
            }
            unpacked += u64::from(size);
            position += 8 + data_reserve + u64::from(packed);
            if position > len {
                return Err(format!(
                    "folder {index}, data block {block} runs past the end of the file"
                ));
            }
        }
        folder_sizes.push(unpacked);
    }

    reader
        .seek(SeekFrom::Start(u64::from(files_offset)))
        .map_err(io)?;
    for file in 0..files {
        let mut entry = [0u8; 16];
        reader
            .read_exact(&mut entry)
            .map_err(|e| format!("file entry {file}: {e}"))?;
        skip_name(reader).map_err(|e| format!("file entry {file}: {e}"))?;
        let (size, start, folder) = (u32_at(&entry, 0), u32_at(&entry, 4), u16_at(&entry, 8));
        // Out-of-range folders (and the "continued" markers) are refused by
        // the crate itself with an error.
        let Some(&folder_size) = folder_sizes.get(usize::from(folder)) else {
            continue;
        };
        if u64::from(start) + u64::from(size) > folder_size {
            return Err(format!(
                "file entry {file} lies beyond its folder's data ({start} + {size} > {folder_size} bytes)"
            ));
        }
    }
    Ok(())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Skips a NUL-terminated name (at most 256 bytes, as the format allows).
fn skip_name<R: Read>(reader: &mut R) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    for _ in 0..=256 {
        reader.read_exact(&mut byte)?;
        if byte[0] == 0 {
            return Ok(());
        }
    }
    Err(std::io::Error::other("a name longer than 256 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A stored (uncompressed) cabinet of one folder with `blocks`, and the
    /// files as (name, offset in the folder, size).
    fn cabinet(blocks: &[(&[u8], u16)], files: &[(&str, u32, u32)]) -> Vec<u8> {
        let folder_at = 36u32;
        let files_at = folder_at + 8;
        let names: usize = files.iter().map(|(n, _, _)| 16 + n.len() + 1).sum();
        let data_at = files_at + names as u32;
        let mut out = Vec::new();
        out.extend_from_slice(b"MSCF");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&0u32.to_le_bytes()); // cbCabinet, unchecked
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&files_at.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&[3, 1]);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&data_at.to_le_bytes());
        out.extend_from_slice(&(blocks.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        for (name, start, size) in files {
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(name.as_bytes());
            out.push(0);
        }
        for (data, stated) in blocks {
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            out.extend_from_slice(&stated.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn a_consistent_cabinet_passes_and_the_crate_reads_it() {
        let bytes = cabinet(
            &[(b"CBS line one\n", 13), (b"two\n", 4)],
            &[("CBS.log", 0, 13), ("b.log", 13, 4)],
        );
        assert_eq!(check_layout(&mut Cursor::new(&bytes)), Ok(()));
        let mut cabinet = cab::Cabinet::new(Cursor::new(&bytes)).unwrap();
        let mut text = String::new();
        cabinet
            .read_file("b.log")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "two\n");
    }

    #[test]
    fn a_file_beyond_its_folders_data_is_refused() {
        let bytes = cabinet(&[(b"abc", 3)], &[("CBS.log", 2, 5)]);
        let error = check_layout(&mut Cursor::new(&bytes)).unwrap_err();
        assert!(error.contains("beyond its folder's data"), "{error}");
    }

    #[test]
    fn a_stored_block_of_the_wrong_size_is_refused() {
        let bytes = cabinet(&[(b"abc", 9)], &[("CBS.log", 0, 3)]);
        let error = check_layout(&mut Cursor::new(&bytes)).unwrap_err();
        assert!(error.contains("stored, yet 3 bytes"), "{error}");
    }

    #[test]
    fn a_truncated_cabinet_is_refused() {
        let bytes = cabinet(&[(b"abc", 3)], &[("CBS.log", 0, 3)]);
        for cut in [10, 40, bytes.len() - 2] {
            assert!(
                check_layout(&mut Cursor::new(&bytes[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }
}
