import SealbakMySQL
import Testing

/// The dump row counter against hand-written dumps, fed whole and one byte at a time.
@Suite struct DumpRowCounterTests {
    static let dump = #"""
        /*M!999999\- enable the sandbox mode */ 
        -- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
        /*!40101 SET NAMES utf8mb4 */;
        CREATE TABLE `t` (`id` int, `s` text COMMENT 'a;b''c (x),(y)') ENGINE=InnoDB;
        LOCK TABLES `t` WRITE;
        INSERT INTO `t` VALUES
        (1,'a),(b;\'x',0x00FF29,'{\"a\":1}'),
        (2,'😀 emoji',NULL,_binary 'q\\'),
        (3,'it''s (not) a row',-4,'#',"dq ),( \" x");
        INSERT INTO `t` VALUES (4,'-- not a comment',0x28,'/* no */');
        UNLOCK TABLES;
        INSERT INTO `we``ird (name)` VALUES (1),(2);
        -- INSERT INTO `t` VALUES (99);
        # INSERT INTO `t` VALUES (98);
        /* INSERT INTO `t` VALUES (97); */
        DELIMITER ;;
        /*!50003 CREATE*/ /*!50003 TRIGGER tr AFTER INSERT ON t FOR EACH ROW
        BEGIN
        INSERT INTO `t` VALUES (96);
        END */;;
        CREATE PROCEDURE `p`()
        BEGIN
        INSERT INTO `t` VALUES (95),(94);
        END
        ;;
        DELIMITER ;
        /*!50001 VIEW `v` AS select 'x;*/' AS `a` */;
        INSERT INTO `empty` VALUES ();
        -- Dump completed on 2026-11-30  2:18:39
        """#

    func check(_ c: DumpRowCounter) {
        #expect(c.rows["t"] == 4)
        #expect(c.rows["we`ird (name)"] == 2)
        #expect(c.rows["empty"] == 1)
        #expect(c.rows.count == 3)
        #expect(c.problem == nil)
    }

    @Test func countsRowsOfAWholeDump() {
        var c = DumpRowCounter()
        c.feed(Array(Self.dump.utf8))
        check(c)
        #expect(c.tableOrder == ["t", "we`ird (name)", "empty"])
    }

    @Test func countsTheSameFedOneByteAtATime() {
        var c = DumpRowCounter()
        for b in Self.dump.utf8 { c.feed([b]) }
        check(c)
    }

    @Test func countsTheSameInRandomChunks() {
        var rng = SystemRandomNumberGenerator()
        let bytes = Array(Self.dump.utf8)
        for _ in 0..<50 {
            var c = DumpRowCounter()
            var i = 0
            while i < bytes.count {
                let n = Int.random(in: 1...40, using: &rng)
                c.feed(Array(bytes[i..<min(bytes.count, i + n)]))
                i += n
            }
            check(c)
        }
    }

    @Test func aTruncatedDumpIsNamedAsSuch() {
        let bytes = Array(Self.dump.utf8)
        let cut = bytes.firstIndex(of: "😀".utf8.first!)!
        var c = DumpRowCounter()
        c.feed(Array(bytes[..<cut]))
        #expect(c.problem?.contains("truncated") == true)
        var d = DumpRowCounter()
        d.feed(Array(Self.dump.utf8.dropLast(40)))
        #expect(d.problem != nil)
    }
}
