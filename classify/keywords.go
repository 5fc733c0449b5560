package classify

// kw identifies a keyword; kwNone for other words.
type kw uint16

// The keywords the parser looks at, sorted. There is no generator: a new
// keyword goes here and in kwText (TestKeywords checks that each has
// its text).
const (
	kwNone kw = iota
	kwABORT
	kwACTION
	kwAFTER
	kwALGORITHM
	kwALL
	kwALTER
	kwANALYSE
	kwANALYZE
	kwAND
	kwANY
	kwARRAY
	kwAS
	kwATOMIC
	kwATTACH
	kwAUTOCOMMIT
	kwBEFORE
	kwBEGIN
	kwBETWEEN
	kwBY
	kwCALL
	kwCASCADE
	kwCASE
	kwCHAIN
	kwCHECK
	kwCHECKPOINT
	kwCHECKSUM
	kwCLOSE
	kwCLUSTER
	kwCOLUMN
	kwCOMMENT
	kwCOMMIT
	kwCONCURRENTLY
	kwCONFLICT
	kwCONSTRAINT
	kwCOPY
	kwCREATE
	kwCROSS
	kwCURRENT
	kwCURSOR
	kwCYCLE
	kwDATA
	kwDATABASE
	kwDEALLOCATE
	kwDECLARE
	kwDEFAULT
	kwDEFERRED
	kwDEFINER
	kwDELAYED
	kwDELETE
	kwDESC
	kwDESCRIBE
	kwDETACH
	kwDISCARD
	kwDISTINCT
	kwDO
	kwDROP
	kwDUPLICATE
	kwEACH
	kwELSE
	kwELSEIF
	kwEND
	kwESCAPE
	kwEVENT
	kwEXCEPT
	kwEXCLUSIVE
	kwEXEC
	kwEXECUTE
	kwEXISTS
	kwEXPLAIN
	kwFAIL
	kwFALSE
	kwFETCH
	kwFLUSH
	kwFOLLOWS
	kwFOR
	kwFORCE
	kwFOREIGN
	kwFROM
	kwFULL
	kwFUNCTION
	kwGLOBAL
	kwGRANT
	kwGROUP
	kwHANDLER
	kwHAVING
	kwHELP
	kwHIGH_PRIORITY
	kwIF
	kwIGNORE
	kwIMMEDIATE
	kwIMPORT
	kwIN
	kwINDEX
	kwINDEXED
	kwINFILE
	kwINNER
	kwINSERT
	kwINSTEAD
	kwINTERSECT
	kwINTO
	kwIS
	kwISOLATION
	kwITERATE
	kwJOIN
	kwKEY
	kwKILL
	kwLATERAL
	kwLEAVE
	kwLEFT
	kwLIKE
	kwLIMIT
	kwLISTEN
	kwLOAD
	kwLOCAL
	kwLOCK
	kwLOCKED
	kwLOOP
	kwLOW_PRIORITY
	kwMATERIALIZED
	kwMERGE
	kwMODE
	kwMOVE
	kwNATURAL
	kwNO
	kwNOT
	kwNOTHING
	kwNOTIFY
	kwNOWAIT
	kwNULL
	kwOF
	kwOFFSET
	kwON
	kwONLY
	kwOPTIMIZE
	kwOR
	kwORDER
	kwOUTER
	kwOVERRIDING
	kwPARTITION
	kwPRAGMA
	kwPRECEDES
	kwPREPARE
	kwPREPARED
	kwPROCEDURE
	kwQUICK
	kwREAD
	kwRECURSIVE
	kwREFERENCES
	kwREFRESH
	kwREINDEX
	kwRELEASE
	kwRENAME
	kwREPAIR
	kwREPEAT
	kwREPLACE
	kwRESET
	kwRESTRICT
	kwRETURNING
	kwREVOKE
	kwRIGHT
	kwROLLBACK
	kwROW
	kwRULE
	kwSAVEPOINT
	kwSCHEMA
	kwSEARCH
	kwSECURITY
	kwSELECT
	kwSESSION
	kwSET
	kwSHARE
	kwSHOW
	kwSKIP
	kwSTART
	kwSTRAIGHT_JOIN
	kwSYSTEM
	kwTABLE
	kwTABLES
	kwTEMP
	kwTEMPORARY
	kwTHEN
	kwTO
	kwTRANSACTION
	kwTRIGGER
	kwTRUE
	kwTRUNCATE
	kwUNION
	kwUNIQUE
	kwUNKNOWN
	kwUNLISTEN
	kwUNLOCK
	kwUNLOGGED
	kwUNTIL
	kwUPDATE
	kwUSE
	kwUSER
	kwUSING
	kwVACUUM
	kwVALUE
	kwVALUES
	kwVIEW
	kwVIRTUAL
	kwWAIT
	kwWHEN
	kwWHERE
	kwWHILE
	kwWINDOW
	kwWITH
	kwWORK
	kwXA
	kwXML
	kwXOR
	kwCount
)

// kwText spells each keyword as lookupKeyword matches it, in upper case;
// the lexer's keywords map is its inverse.
var kwText = [kwCount]string{
	kwABORT:         "ABORT",
	kwACTION:        "ACTION",
	kwAFTER:         "AFTER",
	kwALGORITHM:     "ALGORITHM",
	kwALL:           "ALL",
	kwALTER:         "ALTER",
	kwANALYSE:       "ANALYSE",
	kwANALYZE:       "ANALYZE",
	kwAND:           "AND",
	kwANY:           "ANY",
	kwARRAY:         "ARRAY",
	kwAS:            "AS",
	kwATOMIC:        "ATOMIC",
	kwATTACH:        "ATTACH",
	kwAUTOCOMMIT:    "AUTOCOMMIT",
	kwBEFORE:        "BEFORE",
	kwBEGIN:         "BEGIN",
	kwBETWEEN:       "BETWEEN",
	kwBY:            "BY",
	kwCALL:          "CALL",
	kwCASCADE:       "CASCADE",
	kwCASE:          "CASE",
	kwCHAIN:         "CHAIN",
	kwCHECK:         "CHECK",
	kwCHECKPOINT:    "CHECKPOINT",
	kwCHECKSUM:      "CHECKSUM",
	kwCLOSE:         "CLOSE",
	kwCLUSTER:       "CLUSTER",
	kwCOLUMN:        "COLUMN",
	kwCOMMENT:       "COMMENT",
	kwCOMMIT:        "COMMIT",
	kwCONCURRENTLY:  "CONCURRENTLY",
	kwCONFLICT:      "CONFLICT",
	kwCONSTRAINT:    "CONSTRAINT",
	kwCOPY:          "COPY",
	kwCREATE:        "CREATE",
	kwCROSS:         "CROSS",
	kwCURRENT:       "CURRENT",
	kwCURSOR:        "CURSOR",
	kwCYCLE:         "CYCLE",
	kwDATA:          "DATA",
	kwDATABASE:      "DATABASE",
	kwDEALLOCATE:    "DEALLOCATE",
	kwDECLARE:       "DECLARE",
	kwDEFAULT:       "DEFAULT",
	kwDEFERRED:      "DEFERRED",
	kwDEFINER:       "DEFINER",
	kwDELAYED:       "DELAYED",
	kwDELETE:        "DELETE",
	kwDESC:          "DESC",
	kwDESCRIBE:      "DESCRIBE",
	kwDETACH:        "DETACH",
	kwDISCARD:       "DISCARD",
	kwDISTINCT:      "DISTINCT",
	kwDO:            "DO",
	kwDROP:          "DROP",
	kwDUPLICATE:     "DUPLICATE",
	kwEACH:          "EACH",
	kwELSE:          "ELSE",
	kwELSEIF:        "ELSEIF",
	kwEND:           "END",
	kwESCAPE:        "ESCAPE",
	kwEVENT:         "EVENT",
	kwEXCEPT:        "EXCEPT",
	kwEXCLUSIVE:     "EXCLUSIVE",
	kwEXEC:          "EXEC",
	kwEXECUTE:       "EXECUTE",
	kwEXISTS:        "EXISTS",
	kwEXPLAIN:       "EXPLAIN",
	kwFAIL:          "FAIL",
	kwFALSE:         "FALSE",
	kwFETCH:         "FETCH",
	kwFLUSH:         "FLUSH",
	kwFOLLOWS:       "FOLLOWS",
	kwFOR:           "FOR",
	kwFORCE:         "FORCE",
	kwFOREIGN:       "FOREIGN",
	kwFROM:          "FROM",
	kwFULL:          "FULL",
	kwFUNCTION:      "FUNCTION",
	kwGLOBAL:        "GLOBAL",
	kwGRANT:         "GRANT",
	kwGROUP:         "GROUP",
	kwHANDLER:       "HANDLER",
	kwHAVING:        "HAVING",
	kwHELP:          "HELP",
	kwHIGH_PRIORITY: "HIGH_PRIORITY",
	kwIF:            "IF",
	kwIGNORE:        "IGNORE",
	kwIMMEDIATE:     "IMMEDIATE",
	kwIMPORT:        "IMPORT",
	kwIN:            "IN",
	kwINDEX:         "INDEX",
	kwINDEXED:       "INDEXED",
	kwINFILE:        "INFILE",
	kwINNER:         "INNER",
	kwINSERT:        "INSERT",
	kwINSTEAD:       "INSTEAD",
	kwINTERSECT:     "INTERSECT",
	kwINTO:          "INTO",
	kwIS:            "IS",
	kwISOLATION:     "ISOLATION",
	kwITERATE:       "ITERATE",
	kwJOIN:          "JOIN",
	kwKEY:           "KEY",
	kwKILL:          "KILL",
	kwLATERAL:       "LATERAL",
	kwLEAVE:         "LEAVE",
	kwLEFT:          "LEFT",
	kwLIKE:          "LIKE",
	kwLIMIT:         "LIMIT",
	kwLISTEN:        "LISTEN",
	kwLOAD:          "LOAD",
	kwLOCAL:         "LOCAL",
	kwLOCK:          "LOCK",
	kwLOCKED:        "LOCKED",
	kwLOOP:          "LOOP",
	kwLOW_PRIORITY:  "LOW_PRIORITY",
	kwMATERIALIZED:  "MATERIALIZED",
	kwMERGE:         "MERGE",
	kwMODE:          "MODE",
	kwMOVE:          "MOVE",
	kwNATURAL:       "NATURAL",
	kwNO:            "NO",
	kwNOT:           "NOT",
	kwNOTHING:       "NOTHING",
	kwNOTIFY:        "NOTIFY",
	kwNOWAIT:        "NOWAIT",
	kwNULL:          "NULL",
	kwOF:            "OF",
	kwOFFSET:        "OFFSET",
	kwON:            "ON",
	kwONLY:          "ONLY",
	kwOPTIMIZE:      "OPTIMIZE",
	kwOR:            "OR",
	kwORDER:         "ORDER",
	kwOUTER:         "OUTER",
	kwOVERRIDING:    "OVERRIDING",
	kwPARTITION:     "PARTITION",
	kwPRAGMA:        "PRAGMA",
	kwPRECEDES:      "PRECEDES",
	kwPREPARE:       "PREPARE",
	kwPREPARED:      "PREPARED",
	kwPROCEDURE:     "PROCEDURE",
	kwQUICK:         "QUICK",
	kwREAD:          "READ",
	kwRECURSIVE:     "RECURSIVE",
	kwREFERENCES:    "REFERENCES",
	kwREFRESH:       "REFRESH",
	kwREINDEX:       "REINDEX",
	kwRELEASE:       "RELEASE",
	kwRENAME:        "RENAME",
	kwREPAIR:        "REPAIR",
	kwREPEAT:        "REPEAT",
	kwREPLACE:       "REPLACE",
	kwRESET:         "RESET",
	kwRESTRICT:      "RESTRICT",
	kwRETURNING:     "RETURNING",
	kwREVOKE:        "REVOKE",
	kwRIGHT:         "RIGHT",
	kwROLLBACK:      "ROLLBACK",
	kwROW:           "ROW",
	kwRULE:          "RULE",
	kwSAVEPOINT:     "SAVEPOINT",
	kwSCHEMA:        "SCHEMA",
	kwSEARCH:        "SEARCH",
	kwSECURITY:      "SECURITY",
	kwSELECT:        "SELECT",
	kwSESSION:       "SESSION",
	kwSET:           "SET",
	kwSHARE:         "SHARE",
	kwSHOW:          "SHOW",
	kwSKIP:          "SKIP",
	kwSTART:         "START",
	kwSTRAIGHT_JOIN: "STRAIGHT_JOIN",
	kwSYSTEM:        "SYSTEM",
	kwTABLE:         "TABLE",
	kwTABLES:        "TABLES",
	kwTEMP:          "TEMP",
	kwTEMPORARY:     "TEMPORARY",
	kwTHEN:          "THEN",
	kwTO:            "TO",
	kwTRANSACTION:   "TRANSACTION",
	kwTRIGGER:       "TRIGGER",
	kwTRUE:          "TRUE",
	kwTRUNCATE:      "TRUNCATE",
	kwUNION:         "UNION",
	kwUNIQUE:        "UNIQUE",
	kwUNKNOWN:       "UNKNOWN",
	kwUNLISTEN:      "UNLISTEN",
	kwUNLOCK:        "UNLOCK",
	kwUNLOGGED:      "UNLOGGED",
	kwUNTIL:         "UNTIL",
	kwUPDATE:        "UPDATE",
	kwUSE:           "USE",
	kwUSER:          "USER",
	kwUSING:         "USING",
	kwVACUUM:        "VACUUM",
	kwVALUE:         "VALUE",
	kwVALUES:        "VALUES",
	kwVIEW:          "VIEW",
	kwVIRTUAL:       "VIRTUAL",
	kwWAIT:          "WAIT",
	kwWHEN:          "WHEN",
	kwWHERE:         "WHERE",
	kwWHILE:         "WHILE",
	kwWINDOW:        "WINDOW",
	kwWITH:          "WITH",
	kwWORK:          "WORK",
	kwXA:            "XA",
	kwXML:           "XML",
	kwXOR:           "XOR",
}
