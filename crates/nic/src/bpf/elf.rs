//! A minimal reader for the eBPF ELF object that build.rs compiles: program sections, the map
//! definitions in the `maps` section, the license, and the `R_BPF_64_64` relocations that tie a
//! `ld_imm64` instruction to a map.
//!
//! It understands exactly what Rampart's own program uses and refuses anything else with a named
//! error (calls to other functions, global data, other relocation types): a loader that silently
//! skipped a relocation would load a program that does the wrong thing. It never panics on a
//! malformed object and never touches the kernel.

use crate::error::{Error, Result};

const EM_BPF: u16 = 247;
const SHT_SYMTAB: u32 = 2;
const SHT_REL: u32 = 9;
const SHF_EXECINSTR: u64 = 0x4;
const R_BPF_64_64: u32 = 1;
const BPF_LD_IMM64: u8 = 0x18;

/// A map as declared in the object's `maps` section (`struct rampart_map_def`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Symbol name, e.g. `rampart_xsks`.
    pub name: String,
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `map_flags` for `BPF_MAP_CREATE`.
    pub map_flags: u32,
    offset: u64,
}

/// One program: the instructions of an executable section and the map each `ld_imm64` names.
#[derive(Debug, Clone)]
pub struct ProgramSection {
    /// Section name, e.g. `xdp/wan`.
    pub section: String,
    /// Name of the function defined in the section.
    pub function: String,
    /// Raw instructions, 8 bytes each.
    pub insns: Vec<u64>,
    /// (instruction index, map name) for every map reference.
    pub map_refs: Vec<(usize, String)>,
}

/// The parsed object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Maps declared in the `maps` section.
    pub maps: Vec<MapDef>,
    /// Executable sections.
    pub programs: Vec<ProgramSection>,
    /// Contents of the `license` section, without the trailing NUL.
    pub license: String,
}

struct Section<'a> {
    name: String,
    sh_type: u32,
    flags: u64,
    info: u32,
    data: &'a [u8],
}

struct Symbol {
    name: String,
    kind: u8,
    shndx: u16,
    value: u64,
}

fn bad(what: impl Into<String>) -> Error {
    Error::Object(what.into())
}

fn bytes<'a>(b: &'a [u8], off: u64, len: u64, what: &str) -> Result<&'a [u8]> {
    let start = usize::try_from(off).map_err(|_| bad(format!("{what}: offset too large")))?;
    let len = usize::try_from(len).map_err(|_| bad(format!("{what}: size too large")))?;
    let end = start.checked_add(len).ok_or_else(|| bad(format!("{what}: overflow")))?;
    b.get(start..end).ok_or_else(|| bad(format!("{what}: runs past the end of the object")))
}

fn u16_at(b: &[u8], off: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(bytes(b, off as u64, 2, "u16")?.try_into().map_err(|_| bad("u16"))?))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(bytes(b, off as u64, 4, "u32")?.try_into().map_err(|_| bad("u32"))?))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(bytes(b, off as u64, 8, "u64")?.try_into().map_err(|_| bad("u64"))?))
}

fn cstr(table: &[u8], off: u32) -> Result<String> {
    let tail = table.get(off as usize..).ok_or_else(|| bad("string offset out of range"))?;
    let end = tail.iter().position(|&c| c == 0).ok_or_else(|| bad("unterminated string"))?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

impl Object {
    /// Parses a little-endian ELF64 eBPF object.
    pub fn parse(elf: &[u8]) -> Result<Object> {
        if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
            return Err(bad("not an ELF file"));
        }
        if elf[4] != 2 || elf[5] != 1 {
            return Err(bad("not a little-endian ELF64 object"));
        }
        if u16_at(elf, 18)? != EM_BPF {
            return Err(bad("not an eBPF object (e_machine != EM_BPF)"));
        }
        let shoff = u64_at(elf, 0x28)?;
        let shentsize = u16_at(elf, 0x3a)? as u64;
        let shnum = u16_at(elf, 0x3c)? as u64;
        let shstrndx = u16_at(elf, 0x3e)? as u64;
        if shentsize < 64 {
            return Err(bad("section header entries too small"));
        }
        let headers = bytes(elf, shoff, shentsize * shnum, "section headers")?;
        let raw_header = |i: u64| -> Result<(u32, u32, u64, u64, u64, u32, u32)> {
            let h = bytes(headers, i * shentsize, 64, "section header")?;
            Ok((
                u32_at(h, 0)?,  // sh_name
                u32_at(h, 4)?,  // sh_type
                u64_at(h, 8)?,  // sh_flags
                u64_at(h, 24)?, // sh_offset
                u64_at(h, 32)?, // sh_size
                u32_at(h, 40)?, // sh_link
                u32_at(h, 44)?, // sh_info
            ))
        };
        let (_, _, _, stroff, strsize, _, _) = raw_header(shstrndx)?;
        let shstrtab = bytes(elf, stroff, strsize, "section name table")?;
        let mut sections = Vec::with_capacity(shnum as usize);
        let mut symtab = None;
        for i in 0..shnum {
            let (name, sh_type, flags, off, size, link, info) = raw_header(i)?;
            // SHT_NOBITS sections have no bytes in the file.
            let data = if sh_type == 8 { &[][..] } else { bytes(elf, off, size, "section contents")? };
            if sh_type == SHT_SYMTAB {
                symtab = Some((data, link));
            }
            sections.push(Section { name: cstr(shstrtab, name)?, sh_type, flags, info, data });
        }
        let (symdata, strndx) = symtab.ok_or_else(|| bad("no symbol table"))?;
        let strtab = sections.get(strndx as usize).ok_or_else(|| bad("symbol string table index out of range"))?.data;
        let mut symbols = Vec::with_capacity(symdata.len() / 24);
        for s in symdata.chunks_exact(24) {
            symbols.push(Symbol {
                name: cstr(strtab, u32_at(s, 0)?)?,
                kind: s[4] & 0xf,
                shndx: u16_at(s, 6)?,
                value: u64_at(s, 8)?,
            });
        }

        let maps_idx = sections.iter().position(|s| s.name == "maps");
        let mut maps = Vec::new();
        if let Some(mi) = maps_idx {
            let data = sections[mi].data;
            for sym in symbols.iter().filter(|s| s.shndx as usize == mi && s.kind == 1 /* STT_OBJECT */) {
                let d = bytes(data, sym.value, 20, "map definition")?;
                maps.push(MapDef {
                    name: sym.name.clone(),
                    map_type: u32_at(d, 0)?,
                    key_size: u32_at(d, 4)?,
                    value_size: u32_at(d, 8)?,
                    max_entries: u32_at(d, 12)?,
                    map_flags: u32_at(d, 16)?,
                    offset: sym.value,
                });
            }
        }

        let license = sections
            .iter()
            .find(|s| s.name == "license")
            .map(|s| String::from_utf8_lossy(s.data).trim_end_matches('\0').to_string())
            .ok_or_else(|| bad("no license section"))?;

        let mut programs = Vec::new();
        for (idx, sec) in sections.iter().enumerate() {
            if sec.flags & SHF_EXECINSTR == 0 || sec.data.is_empty() {
                continue;
            }
            if sec.data.len() % 8 != 0 {
                return Err(bad(format!("section {}: size not a multiple of 8", sec.name)));
            }
            let function = symbols
                .iter()
                .find(|s| s.shndx as usize == idx && s.kind == 2 /* STT_FUNC */)
                .map(|s| s.name.clone())
                .ok_or_else(|| bad(format!("section {}: no function symbol", sec.name)))?;
            let mut insns: Vec<u64> =
                sec.data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
            let mut map_refs = Vec::new();
            for rel in sections.iter().filter(|r| r.sh_type == SHT_REL && r.info as usize == idx) {
                for r in rel.data.chunks_exact(16) {
                    let offset = u64_at(r, 0)?;
                    let info = u64_at(r, 8)?;
                    let (sym_idx, rtype) = ((info >> 32) as usize, info as u32);
                    let sym = symbols.get(sym_idx).ok_or_else(|| bad("relocation symbol out of range"))?;
                    if rtype != R_BPF_64_64 {
                        return Err(bad(format!(
                            "section {}: relocation type {rtype} against {:?} is not supported (calls and \
                             global data are not; inline everything and keep state in maps)",
                            sec.name, sym.name
                        )));
                    }
                    let ii = usize::try_from(offset / 8).map_err(|_| bad("relocation offset"))?;
                    let insn = *insns.get(ii).ok_or_else(|| bad("relocation offset out of range"))?;
                    if offset % 8 != 0 || insn as u8 != BPF_LD_IMM64 || ii + 1 >= insns.len() {
                        return Err(bad(format!("section {}: map relocation not on a ld_imm64", sec.name)));
                    }
                    if Some(sym.shndx as usize) != maps_idx {
                        return Err(bad(format!(
                            "section {}: reference to {:?}, which is not a map (global data is not supported)",
                            sec.name, sym.name
                        )));
                    }
                    let addend = u64::from((insn >> 32) as u32);
                    let target = sym.value + addend;
                    let map = maps
                        .iter()
                        .find(|m| m.offset == target)
                        .ok_or_else(|| bad(format!("section {}: no map at maps+{target}", sec.name)))?;
                    // Clear the addend; the loader writes the map fd there.
                    insns[ii] &= 0x0000_0000_ffff_ffff;
                    map_refs.push((ii, map.name.clone()));
                }
            }
            programs.push(ProgramSection { section: sec.name.clone(), function, insns, map_refs });
        }
        Ok(Object { maps, programs, license })
    }

    /// The program in section `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramSection> {
        self.programs.iter().find(|p| p.section == name)
    }

    /// The map definition called `name`.
    pub fn map(&self, name: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_object_parses() {
        let obj = Object::parse(crate::bpf::STEER_OBJECT).unwrap();
        assert_eq!(obj.license, "Dual MIT/GPL");
        let wan = obj.program("xdp/wan").unwrap();
        assert_eq!(wan.function, "rampart_wan");
        assert!(wan.map_refs.iter().any(|(_, m)| m == "rampart_xsks"));
        assert!(!wan.map_refs.iter().any(|(_, m)| m == "rampart_prot4"));
        let lan = obj.program("xdp/lan").unwrap();
        assert!(lan.map_refs.iter().any(|(_, m)| m == "rampart_prot6"));
        let xsks = obj.map("rampart_xsks").unwrap();
        assert_eq!((xsks.map_type, xsks.key_size, xsks.value_size), (17, 4, 4));
        for (i, _) in &wan.map_refs {
            assert_eq!(wan.insns[*i] as u8, BPF_LD_IMM64);
        }
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        assert!(Object::parse(b"").is_err());
        assert!(Object::parse(&[0x7f, b'E', b'L', b'F', 2, 1, 0, 0]).is_err());
        let mut obj = crate::bpf::STEER_OBJECT.to_vec();
        // Truncations at every 97th byte must fail cleanly, never panic.
        for cut in (0..obj.len()).step_by(97) {
            let _ = Object::parse(&obj[..cut]);
        }
        // Corrupt the section header offset.
        obj[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Object::parse(&obj).is_err());
    }
}
