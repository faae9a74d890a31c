//! The index file: one Parquet column `id_hash` (fixed_size_binary[16]),
//! sorted ascending, no duplicates, one row group (none when empty), plus a
//! key-value entry [`REFLECTS_KEY`] naming the table snapshot it reflects.
//!
//! [`HashWriter`] writes the pages itself (PLAIN, uncompressed, a required
//! column): a page is just 16-byte values back to back, so writing one is a
//! copy, and pages go to the sink as they fill — memory is one page however
//! large the index. parquet's own column writers cost ~70 ns per 16-byte
//! value here (a `FixedLenByteArray` each), 10× the rest of a merge.
//! [`HashReader`] reads any layout (the reference's zstd, nullable column
//! too) through parquet's Arrow reader and checks the order as it goes.

use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, FixedSizeBinaryArray};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{
    ColumnOrder, Compression, Encoding, PageType, Repetition, SortOrder, Type as PhysicalType,
};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::metadata::{
    ColumnChunkMetaData, FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataWriter,
    RowGroupMetaData, SortingColumn,
};
use parquet::file::reader::ChunkReader;
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{SchemaDescriptor, Type};
use serde::{Deserialize, Serialize};

/// The one column.
pub const COLUMN: &str = "id_hash";
/// Key-value metadata key recording what the index reflects.
pub const REFLECTS_KEY: &str = "ecops.hash_index";
/// Key-value metadata key that marks a delta file and records what it
/// extends (see [`super::deltas`]).
pub const DELTA_KEY: &str = "ecops.hash_index_delta";
/// Values per data page (1 MiB of hashes).
const PAGE_VALUES: usize = 65_536;
/// Rows per batch when reading.
const READ_BATCH: usize = 65_536;

/// What an index file was built from: the table (its uuid changes when the
/// table is recreated) and the snapshot (None: the table had none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reflects {
    pub table_uuid: String,
    pub snapshot_id: Option<i64>,
}

/// What a delta file extends: the snapshot the index reflected before it
/// (the main file's, or the previous delta's; None: the table had none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaOf {
    pub base_snapshot_id: Option<i64>,
}

/// Why an index file cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a readable Parquet file: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("wrong schema: {0}")]
    Schema(String),
    #[error("{0} row groups (an index has one)")]
    RowGroups(usize),
    #[error("row {row}: a null hash")]
    Null { row: u64 },
    #[error("row {row}: not sorted ascending (or a duplicate)")]
    Unsorted { row: u64 },
    #[error("the footer says {footer} rows but the file holds {read}")]
    RowCount { footer: u64, read: u64 },
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

/// What the footer of an index file says (nothing beyond the footer is read).
#[derive(Debug, Clone)]
pub struct Footer {
    pub rows: u64,
    /// None for files without our key (the reference's).
    pub reflects: Option<Reflects>,
    /// Set on delta files only.
    pub delta_of: Option<DeltaOf>,
}

/// Checks the footer: one column `id_hash` of 16-byte values, at most one
/// row group (none only when empty), no nulls when statistics say so.
pub fn check_footer(metadata: &ParquetMetaData) -> Result<Footer, FormatError> {
    let schema = metadata.file_metadata().schema_descr();
    if schema.num_columns() != 1 {
        return Err(FormatError::Schema(format!(
            "{} columns; an index has exactly one, {COLUMN}",
            schema.num_columns()
        )));
    }
    let column = schema.column(0);
    let fixed16 =
        column.physical_type() == PhysicalType::FIXED_LEN_BYTE_ARRAY && column.type_length() == 16;
    if column.name() != COLUMN || !fixed16 || column.max_rep_level() != 0 {
        return Err(FormatError::Schema(format!(
            "column '{}' of type {:?}({}); expected {COLUMN} fixed_size_binary[16]",
            column.name(),
            column.physical_type(),
            column.type_length()
        )));
    }
    let rows = u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
    let groups = metadata.num_row_groups();
    if groups > 1 || (groups == 0 && rows > 0) {
        return Err(FormatError::RowGroups(groups));
    }
    if let Some(stats) = metadata
        .row_groups()
        .first()
        .and_then(|g| g.column(0).statistics())
        && stats.null_count_opt().is_some_and(|n| n > 0)
    {
        return Err(FormatError::Null { row: 0 });
    }
    let entry = |key: &str| {
        metadata
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.as_deref())
    };
    let reflects = entry(REFLECTS_KEY).and_then(|v| serde_json::from_str(v).ok());
    let delta_of = entry(DELTA_KEY).and_then(|v| serde_json::from_str(v).ok());
    Ok(Footer {
        rows,
        reflects,
        delta_of,
    })
}

/// Streams the hashes of an index file in order, checking that each is
/// greater than the one before (sorted, distinct) and not null.
pub struct HashReader {
    batches: ParquetRecordBatchReader,
    /// The block being read value by value ([`Self::next_hash`]).
    current: Option<Block>,
    at: usize,
    /// Rows handed out in blocks so far, and the last hash of the last block.
    row: u64,
    last: Option<u128>,
    footer: Footer,
}

/// Consecutive hashes of an index, checked ascending: 16 bytes each, big-endian.
#[derive(Debug, Clone)]
pub struct Block {
    array: FixedSizeBinaryArray,
}

impl Block {
    /// The hashes back to back.
    pub fn bytes(&self) -> &[u8] {
        self.array.value_data()
    }

    pub fn len(&self) -> usize {
        self.array.len()
    }

    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    /// Hash `i`.
    pub fn hash(&self, i: usize) -> u128 {
        hash_at(self.bytes(), i)
    }
}

/// The `i`-th 16-byte big-endian hash of `bytes`.
pub fn hash_at(bytes: &[u8], i: usize) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[i * 16..i * 16 + 16]);
    u128::from_be_bytes(b)
}

impl HashReader {
    /// Opens an index file and checks its footer.
    pub fn open<R: ChunkReader + 'static>(file: R) -> Result<Self, FormatError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        let footer = check_footer(builder.metadata())?;
        if let Some(field) = builder.schema().fields().first()
            && field.data_type() != &DataType::FixedSizeBinary(16)
        {
            return Err(FormatError::Schema(format!(
                "{COLUMN} reads as {}, not fixed_size_binary[16]",
                field.data_type()
            )));
        }
        let batches = builder.with_batch_size(READ_BATCH).build()?;
        Ok(Self {
            batches,
            current: None,
            at: 0,
            row: 0,
            last: None,
            footer,
        })
    }

    /// The footer, as checked.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The next block of hashes (checked: no nulls, each greater than the
    /// one before, across blocks too); None at the end, after checking the
    /// row count against the footer.
    pub fn next_block(&mut self) -> Result<Option<Block>, FormatError> {
        let Some(batch) = self.batches.next() else {
            if self.row != self.footer.rows {
                return Err(FormatError::RowCount {
                    footer: self.footer.rows,
                    read: self.row,
                });
            }
            return Ok(None);
        };
        let batch = batch.map_err(parquet::errors::ParquetError::from)?;
        let array = batch
            .column(0)
            .as_fixed_size_binary_opt()
            .filter(|a| a.value_length() == 16)
            .cloned()
            .ok_or_else(|| FormatError::Schema(format!("{COLUMN} is not fixed_size_binary[16]")))?;
        if array.null_count() > 0 {
            let first_null = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
            return Err(FormatError::Null {
                row: self.row + first_null as u64,
            });
        }
        let block = Block { array };
        let mut previous = self.last;
        for i in 0..block.len() {
            let h = block.hash(i);
            if previous.is_some_and(|p| h <= p) {
                return Err(FormatError::Unsorted {
                    row: self.row + i as u64,
                });
            }
            previous = Some(h);
        }
        self.row += block.len() as u64;
        self.last = previous;
        Ok(Some(block))
    }

    /// The next hash; None at the end.
    pub fn next_hash(&mut self) -> Result<Option<u128>, FormatError> {
        loop {
            if let Some(block) = &self.current
                && self.at < block.len()
            {
                self.at += 1;
                return Ok(Some(block.hash(self.at - 1)));
            }
            match self.next_block()? {
                Some(block) => {
                    self.current = Some(block);
                    self.at = 0;
                }
                None => return Ok(None),
            }
        }
    }
}

/// Writes an index file: hashes in strictly ascending order, then
/// [`HashWriter::finish`] with what the index reflects.
pub struct HashWriter<W: Write + Send> {
    sink: TrackedWrite<W>,
    schema: Arc<SchemaDescriptor>,
    page: Vec<u8>,
    /// Where each data page starts and how big it is (header included).
    pages: Vec<parquet::column::page::PageWriteSpec>,
    rows: u64,
    first: Option<u128>,
    last: Option<u128>,
}

impl<W: Write + Send> HashWriter<W> {
    /// Starts a file (writes the magic bytes).
    pub fn new(sink: W) -> Result<Self, FormatError> {
        let field = Type::primitive_type_builder(COLUMN, PhysicalType::FIXED_LEN_BYTE_ARRAY)
            .with_length(16)
            .with_repetition(Repetition::REQUIRED)
            .build()?;
        let root = Type::group_type_builder("schema")
            .with_fields(vec![Arc::new(field)])
            .build()?;
        let mut sink = TrackedWrite::new(sink);
        sink.write_all(b"PAR1")?;
        Ok(Self {
            sink,
            schema: Arc::new(SchemaDescriptor::new(Arc::new(root))),
            page: Vec::with_capacity(PAGE_VALUES * 16),
            pages: Vec::new(),
            rows: 0,
            first: None,
            last: None,
        })
    }

    /// Hashes written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends a hash; it must be greater than the previous one.
    pub fn push(&mut self, hash: u128) -> Result<(), FormatError> {
        if self.last.is_some_and(|last| hash <= last) {
            return Err(FormatError::Unsorted { row: self.rows });
        }
        self.first.get_or_insert(hash);
        self.last = Some(hash);
        self.page.extend_from_slice(&hash.to_be_bytes());
        self.rows += 1;
        if self.page.len() >= PAGE_VALUES * 16 {
            self.flush_page()?;
        }
        Ok(())
    }

    /// Appends hashes `from..to` of a checked block; the first must be
    /// greater than the last hash written.
    pub fn push_block(&mut self, block: &Block, from: usize, to: usize) -> Result<(), FormatError> {
        if from >= to {
            return Ok(());
        }
        let first = block.hash(from);
        if self.last.is_some_and(|last| first <= last) {
            return Err(FormatError::Unsorted { row: self.rows });
        }
        self.first.get_or_insert(first);
        self.last = Some(block.hash(to - 1));
        let mut bytes = &block.bytes()[from * 16..to * 16];
        self.rows += (to - from) as u64;
        while !bytes.is_empty() {
            let room = PAGE_VALUES * 16 - self.page.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.page.extend_from_slice(now);
            bytes = later;
            if self.page.len() >= PAGE_VALUES * 16 {
                self.flush_page()?;
            }
        }
        Ok(())
    }

    fn flush_page(&mut self) -> Result<(), FormatError> {
        if self.page.is_empty() {
            return Ok(());
        }
        let values = self.page.len() / 16;
        let buf = Bytes::from(std::mem::replace(
            &mut self.page,
            Vec::with_capacity(PAGE_VALUES * 16),
        ));
        let size = buf.len();
        let page = Page::DataPage {
            buf,
            num_values: values as u32,
            encoding: Encoding::PLAIN,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = SerializedPageWriter::new(&mut self.sink)
            .write_page(CompressedPage::new(page, size))?;
        self.pages.push(spec);
        Ok(())
    }

    /// Writes the last page and the footer (recording `reflects`); returns the sink.
    pub fn finish(self, reflects: &Reflects) -> Result<W, FormatError> {
        self.finish_with(reflects, None)
    }

    /// [`Self::finish`] for a delta file: also records what it extends.
    pub fn finish_delta(self, reflects: &Reflects, of: &DeltaOf) -> Result<W, FormatError> {
        self.finish_with(reflects, Some(of))
    }

    fn finish_with(mut self, reflects: &Reflects, of: Option<&DeltaOf>) -> Result<W, FormatError> {
        self.flush_page()?;
        let row_groups = match self.pages.first() {
            None => vec![],
            Some(first) => vec![self.row_group(first.offset)?],
        };
        let json = |v: Result<String, serde_json::Error>| {
            v.map_err(|e| FormatError::Schema(format!("recording the snapshot: {e}")))
        };
        let mut kv = vec![KeyValue::new(
            REFLECTS_KEY.to_string(),
            json(serde_json::to_string(reflects))?,
        )];
        if let Some(of) = of {
            kv.push(KeyValue::new(
                DELTA_KEY.to_string(),
                json(serde_json::to_string(of))?,
            ));
        }
        let file = FileMetaData::new(
            1,
            self.rows as i64,
            Some(format!("ecops {}", env!("CARGO_PKG_VERSION"))),
            Some(kv),
            self.schema.clone(),
            Some(vec![ColumnOrder::TYPE_DEFINED_ORDER(SortOrder::UNSIGNED)]),
        );
        let metadata = ParquetMetaData::new(file, row_groups);
        // No page indexes, so no offsets inside the footer depend on where it starts.
        ParquetMetaDataWriter::new(&mut self.sink, &metadata).finish()?;
        Ok(self.sink.into_inner()?)
    }

    fn row_group(&self, first_page: u64) -> Result<RowGroupMetaData, FormatError> {
        let bytes: u64 = self.pages.iter().map(|p| p.bytes_written).sum();
        let stat = |v: Option<u128>| {
            v.map(|h| FixedLenByteArray::from(ByteArray::from(h.to_be_bytes().to_vec())))
        };
        let column = ColumnChunkMetaData::builder(self.schema.column(0))
            .set_encodings(vec![Encoding::PLAIN, Encoding::RLE])
            .set_compression(Compression::UNCOMPRESSED)
            .set_num_values(self.rows as i64)
            .set_total_compressed_size(bytes as i64)
            .set_total_uncompressed_size(bytes as i64)
            .set_data_page_offset(first_page as i64)
            .set_statistics(Statistics::new(
                stat(self.first),
                stat(self.last),
                None,
                Some(0),
                false,
            ))
            .build()?;
        debug_assert!(
            self.pages
                .iter()
                .all(|p| p.page_type == PageType::DATA_PAGE)
        );
        Ok(RowGroupMetaData::builder(self.schema.clone())
            .set_num_rows(self.rows as i64)
            .set_total_byte_size(bytes as i64)
            .set_column_metadata(vec![column])
            .set_sorting_columns(Some(vec![SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            }]))
            .set_file_offset(first_page as i64)
            .set_ordinal(0)
            .build()?)
    }
}
