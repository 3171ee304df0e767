//! Cabinets (`.cab`, such as `CbsPersist_*.cab`), read folder by folder.
//!
//! Files of a cab lie in folders: each folder is one compressed stream of
//! data blocks, and a file is a range of it. Reading a file by its own
//! means decompressing its folder from the start, so a cab of many files in
//! one big folder costs files × folder size (20,000 files in a folder of
//! 2 GiB: hours). Here every folder is decompressed once, in order, and its
//! files are taken from the stream as it passes; the caller counts every
//! decompressed byte, skipped or read, against its bounds.
//!
//! [`read_layout`] reads the header, the folder table, every data block's
//! header and the file table, and refuses a cabinet whose files do not lie
//! inside their folders' data (a malformed table made an earlier reader
//! panic). [`FolderStream`] decompresses one folder: stored, MSZIP (deflate
//! with the previous block's last 32 KiB as dictionary) or LZX (`lzxd`).

use std::io::{Read, Seek, SeekFrom};

/// A cabinet's flags: reserve fields present, a previous or next cabinet.
const FLAG_PREV: u16 = 0x1;
const FLAG_NEXT: u16 = 0x2;
const FLAG_RESERVE: u16 = 0x4;
/// The compression type's low four bits.
const COMPRESSION_MASK: u16 = 0x000f;
const STORED: u16 = 0;
const MSZIP: u16 = 1;
const LZX: u16 = 3;
/// The most a data block may hold once decompressed.
const MAX_BLOCK: usize = 0x8000 + 6144;

/// Where each folder's data blocks are and which files each holds.
#[derive(Debug, Clone)]
pub struct Layout {
    pub folders: Vec<FolderLayout>,
    pub files: Vec<FileEntry>,
    /// Bytes every folder holds once decompressed.
    pub unpacked: u64,
}

#[derive(Debug, Clone)]
pub struct FolderLayout {
    compression: u16,
    blocks: Vec<Block>,
    pub unpacked: u64,
}

#[derive(Debug, Clone, Copy)]
struct Block {
    /// Where the block's compressed bytes start in the file.
    data: u64,
    packed: u16,
    size: u16,
}

/// One file of the cabinet: a range of its folder's data.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub start: u64,
    /// `None` for a file continued from or into another cabinet.
    pub folder: Option<usize>,
}

/// The cabinet's layout, or why it is unsound. Leaves the reader anywhere.
pub fn read_layout<R: Read + Seek>(reader: &mut R) -> Result<Layout, String> {
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
    for flag in [FLAG_PREV, FLAG_NEXT] {
        if flags & flag != 0 {
            // The other cabinet's name and its disk's name.
            for _ in 0..2 {
                read_name(reader).map_err(io)?;
            }
        }
    }
    // (first block's offset, block count, compression) per folder.
    let mut table = Vec::with_capacity(usize::from(folders));
    for _ in 0..folders {
        let mut entry = [0u8; 8];
        reader.read_exact(&mut entry).map_err(io)?;
        reader
            .seek(SeekFrom::Current(folder_reserve as i64))
            .map_err(io)?;
        table.push((u32_at(&entry, 0), u16_at(&entry, 4), u16_at(&entry, 6)));
    }
    let mut layout = Layout {
        folders: Vec::with_capacity(table.len()),
        files: Vec::with_capacity(usize::from(files)),
        unpacked: 0,
    };
    for (index, &(offset, blocks, compression)) in table.iter().enumerate() {
        let folder = read_blocks(
            reader,
            index,
            offset,
            blocks,
            compression,
            data_reserve,
            len,
        )?;
        layout.unpacked += folder.unpacked;
        layout.folders.push(folder);
    }
    reader
        .seek(SeekFrom::Start(u64::from(files_offset)))
        .map_err(io)?;
    for file in 0..files {
        let mut entry = [0u8; 16];
        reader
            .read_exact(&mut entry)
            .map_err(|e| format!("file entry {file}: {e}"))?;
        let name = read_name(reader).map_err(|e| format!("file entry {file}: {e}"))?;
        let (size, start) = (u64::from(u32_at(&entry, 0)), u64::from(u32_at(&entry, 4)));
        // 0xFFFD..=0xFFFF mark files continued across cabinets.
        let folder = Some(usize::from(u16_at(&entry, 8))).filter(|&f| f < layout.folders.len());
        if let Some(f) = folder
            && start + size > layout.folders[f].unpacked
        {
            return Err(format!(
                "file entry {file} lies beyond its folder's data ({start} + {size} > {} bytes)",
                layout.folders[f].unpacked
            ));
        }
        layout.files.push(FileEntry {
            name,
            size,
            start,
            folder,
        });
    }
    Ok(layout)
}

/// A folder's data block headers, checked against the file's length.
fn read_blocks<R: Read + Seek>(
    reader: &mut R,
    index: usize,
    offset: u32,
    blocks: u16,
    compression: u16,
    data_reserve: u64,
    len: u64,
) -> Result<FolderLayout, String> {
    let io = |e: std::io::Error| format!("folder {index}: {e}");
    let stored = compression & COMPRESSION_MASK == STORED;
    let mut folder = FolderLayout {
        compression,
        blocks: Vec::with_capacity(usize::from(blocks)),
        unpacked: 0,
    };
    let mut position = u64::from(offset);
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
        if usize::from(size) > MAX_BLOCK {
            return Err(format!(
                "folder {index}, data block {block}: {size} bytes, more than a block holds"
            ));
        }
        let data = position + 8 + data_reserve;
        position = data + u64::from(packed);
        if position > len {
            return Err(format!(
                "folder {index}, data block {block} runs past the end of the file"
            ));
        }
        folder.unpacked += u64::from(size);
        folder.blocks.push(Block { data, packed, size });
    }
    Ok(folder)
}

/// One folder's data, decompressed block by block as it is read.
pub struct FolderStream<'a, R> {
    reader: &'a mut R,
    blocks: &'a [Block],
    next: usize,
    decoder: Decoder,
    out: Vec<u8>,
    at: usize,
}

enum Decoder {
    Stored,
    MsZip {
        inflate: flate2::Decompress,
        /// The last 32 KiB decompressed: the next block may refer to them.
        window: Vec<u8>,
    },
    Lzx(Box<lzxd::Lzxd>),
}

impl<'a, R: Read + Seek> FolderStream<'a, R> {
    /// A stream over `folder`; its compression must be one this reads.
    pub fn new(reader: &'a mut R, folder: &'a FolderLayout) -> Result<Self, String> {
        let decoder = match folder.compression & COMPRESSION_MASK {
            STORED => Decoder::Stored,
            MSZIP => Decoder::MsZip {
                inflate: flate2::Decompress::new(false),
                window: Vec::new(),
            },
            LZX => {
                let window = match (folder.compression >> 8) & 0x1f {
                    15 => lzxd::WindowSize::KB32,
                    16 => lzxd::WindowSize::KB64,
                    17 => lzxd::WindowSize::KB128,
                    18 => lzxd::WindowSize::KB256,
                    19 => lzxd::WindowSize::KB512,
                    20 => lzxd::WindowSize::MB1,
                    21 => lzxd::WindowSize::MB2,
                    bits => return Err(format!("LZX window of 2^{bits} bytes: not a cab's")),
                };
                Decoder::Lzx(Box::new(lzxd::Lzxd::new(window)))
            }
            2 => return Err("Quantum compression: cannot be read".into()),
            other => return Err(format!("unknown compression type {other}")),
        };
        Ok(FolderStream {
            reader,
            blocks: &folder.blocks,
            next: 0,
            decoder,
            out: Vec::new(),
            at: 0,
        })
    }

    /// Decompresses the next block; `false` at the folder's end. After an
    /// error the stream is over: it never serves a half-decoded block.
    fn load_next(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.at = 0;
        let Some(&block) = self.blocks.get(self.next) else {
            return Ok(false);
        };
        let index = self.next;
        self.next += 1;
        match self.decode(block) {
            Ok(out) if out.len() == usize::from(block.size) => {
                self.out = out;
                Ok(true)
            }
            Ok(out) => {
                self.next = self.blocks.len();
                Err(std::io::Error::other(format!(
                    "data block {index}: {} bytes decompressed where the header says {}",
                    out.len(),
                    block.size
                )))
            }
            Err(e) => {
                self.next = self.blocks.len();
                Err(std::io::Error::other(format!("data block {index}: {e}")))
            }
        }
    }

    fn decode(&mut self, block: Block) -> Result<Vec<u8>, String> {
        let mut packed = vec![0u8; usize::from(block.packed)];
        self.reader
            .seek(SeekFrom::Start(block.data))
            .and_then(|_| self.reader.read_exact(&mut packed))
            .map_err(|e| e.to_string())?;
        let size = usize::from(block.size);
        match &mut self.decoder {
            Decoder::Stored => Ok(packed),
            Decoder::MsZip { inflate, window } => mszip_block(inflate, window, &packed, size),
            Decoder::Lzx(lzx) => lzx
                .decompress_next(&packed, size)
                .map(<[u8]>::to_vec)
                .map_err(|e| format!("LZX: {e}")),
        }
    }
}

impl<R: Read + Seek> Read for FolderStream<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.out.len() {
            if buf.is_empty() || !self.load_next()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// One MSZIP block: "CK", then a deflate stream that may refer back into
/// the previous block's output. The window is primed by inflating it as a
/// stored deflate block first.
fn mszip_block(
    inflate: &mut flate2::Decompress,
    window: &mut Vec<u8>,
    packed: &[u8],
    size: usize,
) -> Result<Vec<u8>, String> {
    let data = packed.strip_prefix(b"CK").ok_or("MSZIP: no CK signature")?;
    inflate.reset(false);
    if !window.is_empty() {
        let len = window.len() as u16;
        let mut primer = Vec::with_capacity(window.len() + 5);
        primer.push(0);
        primer.extend_from_slice(&len.to_le_bytes());
        primer.extend_from_slice(&(!len).to_le_bytes());
        primer.extend_from_slice(window);
        let mut sink = Vec::with_capacity(window.len());
        inflate
            .decompress_vec(&primer, &mut sink, flate2::FlushDecompress::Sync)
            .map_err(|e| format!("MSZIP: {e}"))?;
    }
    let mut out = Vec::with_capacity(size);
    inflate
        .decompress_vec(data, &mut out, flate2::FlushDecompress::Finish)
        .map_err(|e| format!("MSZIP: {e}"))?;
    let keep = 0x8000usize;
    if out.len() >= keep {
        window.clear();
        window.extend_from_slice(&out[out.len() - keep..]);
    } else {
        window.extend_from_slice(&out);
        let excess = window.len().saturating_sub(keep);
        window.drain(..excess);
    }
    Ok(out)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// A NUL-terminated name (at most 256 bytes, as the format allows).
fn read_name<R: Read>(reader: &mut R) -> std::io::Result<String> {
    let mut name = Vec::new();
    let mut byte = [0u8; 1];
    for _ in 0..=256 {
        reader.read_exact(&mut byte)?;
        if byte[0] == 0 {
            return Ok(String::from_utf8_lossy(&name).into_owned());
        }
        name.push(byte[0]);
    }
    Err(std::io::Error::other("a name longer than 256 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn check_layout<R: Read + Seek>(reader: &mut R) -> Result<(), String> {
        read_layout(reader).map(drop)
    }

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

    /// Every file of every folder, read from one pass over each folder.
    fn read_all(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut reader = Cursor::new(bytes);
        let layout = read_layout(&mut reader).unwrap();
        let mut out = Vec::new();
        for (index, folder) in layout.folders.iter().enumerate() {
            let mut stream = FolderStream::new(&mut reader, folder).unwrap();
            let mut data = Vec::new();
            stream.read_to_end(&mut data).unwrap();
            for f in layout.files.iter().filter(|f| f.folder == Some(index)) {
                let range = f.start as usize..(f.start + f.size) as usize;
                out.push((f.name.clone(), data[range].to_vec()));
            }
        }
        out
    }

    #[test]
    fn a_consistent_cabinet_passes_and_its_files_are_read() {
        let bytes = cabinet(
            &[(b"CBS line one\n", 13), (b"two\n", 4)],
            &[("CBS.log", 0, 13), ("b.log", 13, 4)],
        );
        assert_eq!(check_layout(&mut Cursor::new(&bytes)), Ok(()));
        let files = read_all(&bytes);
        assert_eq!(files[1], ("b.log".to_string(), b"two\n".to_vec()));
    }

    #[test]
    fn mszip_folders_are_read_across_blocks_as_the_cab_crate_wrote_them() {
        // Over 32 KiB, so that later blocks refer back into earlier ones.
        let log: Vec<u8> = (0..4000)
            .flat_map(|i| {
                format!("2026-03-01 10:00:00, Info CBS line {i} of the log\n").into_bytes()
            })
            .collect();
        let mut builder = cab::CabinetBuilder::new();
        let folder = builder.add_folder(cab::CompressionType::MsZip);
        folder.add_file("CBS.log");
        folder.add_file("small.log");
        let mut writer = builder.build(Cursor::new(Vec::new())).unwrap();
        while let Some(mut entry) = writer.next_file().unwrap() {
            let data: &[u8] = if entry.file_name() == "CBS.log" {
                &log
            } else {
                b"tail\n"
            };
            std::io::Write::write_all(&mut entry, data).unwrap();
        }
        let bytes = writer.finish().unwrap().into_inner();
        assert!(
            bytes.len() < log.len() / 4,
            "compressed: {} bytes",
            bytes.len()
        );
        let files = read_all(&bytes);
        assert_eq!(files[0].1, log);
        assert_eq!(files[1].1, b"tail\n");
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
