package simulator

import "fmt"

// lessonStep is one subtask of the simulated lecture.
type lessonStep struct {
	title, guide, action string
}

// lesson is a KakaoTalk tutorial for older adults; longer classes go round it again.
var lesson = []lessonStep{
	{"카카오톡 앱 열기", "홈 화면에서 노란색 카카오톡 아이콘을 눌러주세요", "OPEN_APP"},
	{"친구 탭 누르기", "화면 아래쪽의 사람 모양 '친구' 탭을 눌러주세요", "CLICK"},
	{"친구 선택하기", "친구 목록에서 메시지를 보낼 친구를 선택하세요", "CLICK"},
	{"1:1 채팅 누르기", "친구 프로필 아래의 '1:1 채팅' 버튼을 눌러주세요", "CLICK"},
	{"메시지 입력하기", "화면 아래 입력창을 누르고 '안녕하세요'라고 써보세요", "TEXT_INPUT"},
	{"보내기 버튼 누르기", "입력창 오른쪽의 노란색 보내기 버튼을 눌러주세요", "CLICK"},
	{"사진 보내기", "입력창 왼쪽의 '+' 버튼을 누르고 '앨범'을 선택하세요", "CLICK"},
	{"사진 고르기", "보낼 사진을 하나 누르고 '전송'을 눌러주세요", "CLICK"},
	{"이모티콘 보내기", "입력창 옆의 웃는 얼굴 버튼을 눌러 이모티콘을 골라보세요", "CLICK"},
	{"채팅방 나가기", "왼쪽 위의 '<' 버튼을 눌러 채팅 목록으로 돌아가세요", "BACK"},
}

var taskTitles = []string{"카카오톡 시작하기", "메시지 보내기", "사진과 이모티콘", "다시 연습하기"}

// stepsPerTask is how many subtasks each task of the simulated lecture has.
const stepsPerTask = 4

func stepContent(i int) lessonStep {
	s := lesson[i%len(lesson)]
	if round := i / len(lesson); round > 0 {
		s.title = fmt.Sprintf("%s (%d회차)", s.title, round+1)
	}
	return s
}

func taskTitle(i int) string {
	t := taskTitles[i%len(taskTitles)]
	if round := i / len(taskTitles); round > 0 {
		t = fmt.Sprintf("%s %d", t, round+1)
	}
	return t
}

var (
	surnames   = []string{"김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"}
	givenNames = []string{"영자", "순자", "정숙", "영수", "말순", "복순", "영호", "옥자", "순례", "철수"}
)

// studentName is a Korean name; names repeat after 100 students, with a number.
func studentName(i int) string {
	n := surnames[i%len(surnames)] + givenNames[(i/len(surnames))%len(givenNames)]
	if round := i / (len(surnames) * len(givenNames)); round > 0 {
		n = fmt.Sprintf("%s%d", n, round+1)
	}
	return n
}

var logEvents = []string{"CLICK", "SCROLL", "LONG_CLICK", "TEXT_INPUT", "BACK", "SWIPE"}

var instructorMessages = []string{
	"잘하셨습니다! 이제 다음 단계로 넘어갑니다.",
	"천천히 따라 해보세요.",
	"모두 잘 따라오고 계십니다. 다음 단계입니다.",
	"어려우시면 도움 요청 버튼을 눌러주세요.",
}
